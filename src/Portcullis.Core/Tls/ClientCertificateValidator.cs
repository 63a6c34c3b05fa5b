using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Authentication;
using Portcullis.Authentication.X509;
using Portcullis.Caching;

namespace Portcullis.Tls;

/// <summary>The result of verifying one connection's client certificate: a user, or why it failed (never both).</summary>
public sealed record ClientCertificateResult(UserInfo? User, string? Error)
{
    /// <summary>A certificate with an empty CN verified but names nobody (kube-apiserver: not ok, no error).</summary>
    public static ClientCertificateResult None { get; } = new(null, null);

    /// <summary>The chain's result for a request on this connection without a token (built once, then shared).</summary>
    internal ChainResult? Accepted { get; set; }
}

/// <summary>
/// Verifies client certificates against the <c>clientCAFile</c> bundle (every CA in it trusted, custom root trust only:
/// the system store is never consulted), presented intermediates as extra chain elements, EKU clientAuth required.
/// The gateway calls <see cref="Validate"/> once per TLS connection and keeps the result on the connection; results are
/// also cached by certificate SHA-256 (never past NotAfter, at most 5 minutes) so reconnects skip the chain build.
/// Certificates that verified and those that did not are kept in two separate least-recently-used caches: anyone can
/// present any number of self-signed certificates, but only the client CA can fill the first, so a flood of refused
/// certificates never pushes a client's verified result out (it only churns the small cache of refusals).
/// </summary>
public sealed class ClientCertificateValidator
{
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private readonly X509Certificate2Collection _roots;
    private readonly TimeProvider _time;
    /// <summary>Refused certificates remembered at most (a repeated bad certificate skips its chain build).</summary>
    public const int RefusedCapacity = 1024;
    private readonly LruExpireCache<TokenDigest, ClientCertificateResult> _verified;
    private readonly LruExpireCache<TokenDigest, ClientCertificateResult> _refused;

    public ClientCertificateValidator(X509Certificate2Collection roots, TimeProvider? time = null, int capacity = 10_000)
    {
        if (roots.Count == 0)
        {
            throw new ArgumentException("the client CA bundle holds no certificate", nameof(roots));
        }
        _roots = roots;
        _time = time ?? TimeProvider.System;
        _verified = new LruExpireCache<TokenDigest, ClientCertificateResult>(capacity, _time);
        _refused = new LruExpireCache<TokenDigest, ClientCertificateResult>(Math.Min(capacity, RefusedCapacity), _time);
    }

    /// <summary>The CA certificates of <c>tls.clientCAFile</c> (CRLs named by <c>tls.revocationFile</c> are verified against them).</summary>
    public X509Certificate2Collection Authorities => _roots;

    /// <summary>Reads a PEM bundle of one or more CA certificates (<c>tls.clientCAFile</c>).</summary>
    public static ClientCertificateValidator FromFile(string path, TimeProvider? time = null) =>
        new(PemCertificates.LoadBundle(path), time);

    public ClientCertificateResult Validate(X509Certificate2 leaf, X509Certificate2Collection? intermediates = null)
    {
        ArgumentNullException.ThrowIfNull(leaf);
        var key = TokenDigest.FromHash(SHA256.HashData(leaf.RawDataMemory.Span));
        if (_verified.TryGet(key, out var cached) || _refused.TryGet(key, out cached))
        {
            return cached;
        }
        var now = _time.GetUtcNow();
        var result = Verify(leaf, intermediates, now);
        // A verification's result can change with time (expiry): an entry lives until NotAfter at most, and 5 minutes.
        // The cache serves an entry up to its expiry instant inclusive, so the bound is a tick before NotAfter.
        var untilExpiry = new DateTimeOffset(leaf.NotAfter.ToUniversalTime(), TimeSpan.Zero) - now - TimeSpan.FromTicks(1);
        var ttl = untilExpiry < TimeSpan.FromMinutes(5) ? untilExpiry : TimeSpan.FromMinutes(5);
        if (ttl > TimeSpan.Zero)
        {
            (result.Error is null ? _verified : _refused).Add(key, result, ttl);
        }
        return result;
    }

    private ClientCertificateResult Verify(X509Certificate2 leaf, X509Certificate2Collection? intermediates, DateTimeOffset now)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
        // The platform's revocation check (online CRL/OCSP fetches) stays off: tls.revocationFile is checked by the gateway
        // on every handshake, after this (cached) chain result, so a revocation is never hidden by the cache.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(ClientAuthOid));
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        if (intermediates is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        }
        if (!chain.Build(leaf))
        {
            var reasons = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            return new ClientCertificateResult(null, $"verifying certificate {Describe(leaf)} failed: x509: {(reasons.Length == 0 ? "certificate signed by unknown authority" : reasons)}");
        }
        try
        {
            var user = X509Identity.FromCertificate(leaf);
            // system:authenticated is added once here, so the per-request chain step allocates nothing for it.
            return user is null ? ClientCertificateResult.None : new ClientCertificateResult(user.WithAuthenticatedGroup(), null);
        }
        catch (FormatException ex)
        {
            return new ClientCertificateResult(null, $"verifying certificate {Describe(leaf)} failed: {ex.Message}");
        }
    }

    /// <summary>kube-apiserver's certificate description: serial, subject key id, authority key id (no secret in it).</summary>
    private static string Describe(X509Certificate2 cert)
    {
        var skid = cert.Extensions.OfType<X509SubjectKeyIdentifierExtension>().FirstOrDefault()?.SubjectKeyIdentifier ?? "";
        var akid = cert.Extensions.OfType<X509AuthorityKeyIdentifierExtension>().FirstOrDefault()?.KeyIdentifier is { } k
            ? Convert.ToHexString(k.Span) : "";
        return $"SN={cert.SerialNumber}, SKID={FormatHex(skid)}, AKID={FormatHex(akid)}";
    }

    private static string FormatHex(string hex) =>
        string.Join(':', Enumerable.Range(0, hex.Length / 2).Select(i => hex.Substring(i * 2, 2)));
}
