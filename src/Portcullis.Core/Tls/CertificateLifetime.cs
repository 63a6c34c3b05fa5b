using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Configuration;

namespace Portcullis.Tls;

/// <summary>
/// A certificate's lifetime: its validity period, NotAfter − NotBefore (how long a stolen copy is good for, not how long
/// it has left). Read as days — <c>90d</c> or the bare number <c>90</c> — or as a Go duration (<c>2160h</c>); written
/// as days (<c>400d</c>), or as a Go duration below one day (<c>12h</c>).
/// </summary>
public static class CertificateLifetime
{
    /// <summary>The longest lifetime a limit may name: 100 years (a larger one would limit nothing).</summary>
    public const int MaxDays = 36_500;

    /// <summary>The validity period of <paramref name="certificate"/>.</summary>
    public static TimeSpan Of(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return certificate.NotAfter.ToUniversalTime() - certificate.NotBefore.ToUniversalTime();
    }

    /// <summary>Parses <c>90d</c>, <c>90</c> (days) or a Go duration; false unless more than 0 and at most <see cref="MaxDays"/>.</summary>
    public static bool TryParse(string text, out TimeSpan lifetime)
    {
        lifetime = TimeSpan.Zero;
        var s = (text ?? "").Trim();
        var days = s.EndsWith('d') ? s[..^1] : s;
        if (days.Length > 0 && days.All(char.IsAsciiDigit))
        {
            if (!int.TryParse(days, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is <= 0 or > MaxDays)
            {
                return false;
            }
            lifetime = TimeSpan.FromDays(n);
            return true;
        }
        if (s.EndsWith('d') || !GoDuration.TryParse(s, out var parsed) || parsed <= TimeSpan.Zero || parsed > TimeSpan.FromDays(MaxDays))
        {
            return false;
        }
        lifetime = parsed;
        return true;
    }

    /// <summary>A lifetime for messages: days from one day on (<c>400d</c>, <c>364d</c>, <c>1.5d</c>), a Go duration below (<c>12h</c>).</summary>
    public static string Format(TimeSpan lifetime) =>
        lifetime < TimeSpan.FromDays(1) ? GoDuration.Format(lifetime) : lifetime.TotalDays.ToString("0.##", CultureInfo.InvariantCulture) + "d";
}

/// <summary>
/// <c>tls.clientCertificates</c>: a client certificate valid for longer than <see cref="MaxLifetime"/> is refused at the
/// handshake (<see cref="Refuse"/>) or let in and reported (warn). Evaluated on every handshake from the snapshot that
/// made the handshake's options, never cached, so a reload applies to the next handshake.
/// </summary>
public sealed record CertificateLifetimePolicy(TimeSpan MaxLifetime, bool Refuse)
{
    /// <summary>The policy <c>tls.clientCertificates</c> names; null when it sets no limit (or no client CA is set).</summary>
    public static CertificateLifetimePolicy? FromConfiguration(TlsConfiguration? tls) =>
        tls is { ClientCAFile.Length: > 0 } && CertificateLifetime.TryParse(tls.ClientCertificates.MaxLifetime, out var max)
            ? new CertificateLifetimePolicy(max, tls.ClientCertificates.Action != CertificateLifetimeActions.Warn)
            : null;

    /// <summary>True when <paramref name="certificate"/> is valid for longer than the limit; <paramref name="lifetime"/> is its lifetime.</summary>
    public bool IsExceededBy(X509Certificate2 certificate, out TimeSpan lifetime)
    {
        lifetime = CertificateLifetime.Of(certificate);
        return lifetime > MaxLifetime;
    }

    /// <summary>The audit annotation's and the log's description: <c>400d exceeds 90d</c>.</summary>
    public string Describe(TimeSpan lifetime) => $"{CertificateLifetime.Format(lifetime)} exceeds {CertificateLifetime.Format(MaxLifetime)}";
}
