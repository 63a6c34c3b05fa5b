using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Tls;

namespace Portcullis.Check.Probe;

/// <summary>
/// Whether this machine can speak a TLS version at all: OpenSSL builds and system policies (e.g. SECLEVEL=2) often
/// refuse TLS 1.0/1.1, so a failed handshake with a remote server proves nothing about the server unless a loopback
/// handshake with the same version succeeds here.
/// </summary>
internal static class LocalTls
{
    private static readonly ConcurrentDictionary<(SslProtocols, TlsCipherSuite?), Task<string?>> Cache = new();
    private const string TimedOut = "the loopback self-test timed out";

    private static readonly Lazy<X509Certificate2> Throwaway = new(() =>
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=portcullis-probe-throwaway", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return PemCertificates.WithUsableKey(certificate);
    });

    /// <summary>A policy allowing only <paramref name="suite"/>; null (the defaults) when none is given or the platform cannot restrict suites (Windows).</summary>
    public static CipherSuitesPolicy? PolicyFor(TlsCipherSuite? suite) =>
        suite is { } only && !OperatingSystem.IsWindows() ? new CipherSuitesPolicy([only]) : null;

    private static X509Certificate2 SelfSignedRsa()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
    }

    private static X509Certificate2 SelfSignedEcdsa()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
    }

    /// <summary>A self-signed client certificate no server trusts: offered only to see how far a handshake gets.</summary>
    public static X509Certificate2 ThrowawayClientCertificate => Throwaway.Value;

    /// <summary>Null when this machine can negotiate <paramref name="protocol"/>; else why not.</summary>
    public static async Task<string?> CanNegotiateAsync(SslProtocols protocol, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken, TlsCipherSuite? suite = null)
    {
        var task = Cache.GetOrAdd((protocol, suite), key => SelfTestAsync(key.Item1, key.Item2, timeout, time));
        var result = await task.WaitAsync(timeout * 2, cancellationToken).ConfigureAwait(false);
        if (result == TimedOut)
        {
            // A busy machine is not an incapable one: do not remember it.
            Cache.TryRemove(new KeyValuePair<(SslProtocols, TlsCipherSuite?), Task<string?>>((protocol, suite), task));
        }
        return result;
    }

    private static async Task<string?> SelfTestAsync(SslProtocols protocol, TlsCipherSuite? suite, TimeSpan timeout, TimeProvider time)
    {
        using var cts = new CancellationTokenSource(timeout, time);
        // ECDSA suites need an ECDSA certificate; everything else is tested with RSA.
        using var ephemeral = suite?.ToString().Contains("_ECDSA_", StringComparison.Ordinal) == true ? SelfSignedEcdsa() : SelfSignedRsa();
        // Linux servers need a certificate whose key is exportable through PKCS#12.
        using var certificate = PemCertificates.WithUsableKey(ephemeral);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serverTask = Task.Run(async () =>
        {
            using var socket = await listener.AcceptTcpClientAsync(cts.Token).ConfigureAwait(false);
            using var server = new SslStream(socket.GetStream(), false);
            await server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = certificate,
                EnabledSslProtocols = protocol,
                CipherSuitesPolicy = PolicyFor(suite),
                ClientCertificateRequired = false,
            }, cts.Token).ConfigureAwait(false);
        });
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, cts.Token).ConfigureAwait(false);
            using var ssl = new SslStream(client.GetStream(), false);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                EnabledSslProtocols = protocol,
                CipherSuitesPolicy = PolicyFor(suite),
#pragma warning disable CA5359 // our own throwaway certificate on loopback
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
#pragma warning restore CA5359
            }, cts.Token).ConfigureAwait(false);
            await serverTask.WaitAsync(cts.Token).ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException)
        {
            return TimedOut;
        }
        catch (Exception ex)
        {
            return ex.InnerException?.Message ?? ex.Message;
        }
        finally
        {
            listener.Stop();
            // The server side fails as soon as the client gives up; observe it so nothing is left running.
            try
            {
                await serverTask.WaitAsync(timeout).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Its failure is the client's failure, already reported.
            }
        }
    }
}
