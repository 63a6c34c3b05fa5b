using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>Sends hand-written HTTP/1.1 bytes over TLS, for inputs HttpClient refuses to produce.</summary>
public static class RawHttps
{
    public static async Task<string> SendAsync(GatewayTestHost gw, X509Certificate2? clientCertificate, string request)
    {
        await using var tls = await ConnectAsync(gw, clientCertificate);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request.ReplaceLineEndings("\r\n")));
        return await ReadToEndAsync(tls);
    }

    /// <summary>Sends and reads only the response head (status line and headers), for connections that stay open.</summary>
    public static async Task<string> SendAndReadHeadAsync(GatewayTestHost gw, X509Certificate2? clientCertificate, string request)
    {
        await using var tls = await ConnectAsync(gw, clientCertificate);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request.ReplaceLineEndings("\r\n")));
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await tls.ReadAsync(one).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
            if (n == 0)
            {
                break;
            }
            head.Append((char)one[0]);
        }
        return head.ToString();
    }

    public static async Task<SslStream> ConnectAsync(GatewayTestHost gw, X509Certificate2? clientCertificate)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(gw.Uri.Host, gw.Uri.Port).WaitAsync(TimeSpan.FromSeconds(10));
        var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && gw.ValidateServer(cert),
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        }).WaitAsync(TimeSpan.FromSeconds(10));
        return tls;
    }

    public static async Task<string> ReadToEndAsync(Stream stream)
    {
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(15));
    }
}
