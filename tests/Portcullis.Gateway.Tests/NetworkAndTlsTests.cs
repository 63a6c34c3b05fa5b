using System.Net;
using System.Net.Sockets;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

public sealed class NetworkAndTlsTests
{
    [Fact]
    public async Task Connection_from_an_allowed_cidr_is_served_and_from_outside_is_closed_before_tls()
    {
        await using var gw = await GatewayTestHost.StartAsync("network:\n  allow: [127.0.0.1/32]");
        var cert = gw.Pki.IssueClient("jane");

        using (var inside = gw.Client(cert, localAddress: IPAddress.Loopback))
        using (var ok = await inside.GetAsync("/api/v1/pods"))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var outside = gw.Client(cert, localAddress: IPAddress.Parse("127.0.0.2"));
        AssertRefused(await Record.ExceptionAsync(() => outside.GetAsync("/api/v1/pods")));
        Assert.Single(gw.Upstream.Requests);

        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Matches(@"portcullis_network_refused_connections_total\{reason=""network_policy""\} [1-9]", metrics);
    }

    [Fact]
    public async Task Deny_wins_over_allow()
    {
        await using var gw = await GatewayTestHost.StartAsync("network:\n  allow: [127.0.0.0/8]\n  deny: [127.0.0.3/32]");
        using var denied = gw.Client(gw.Pki.IssueClient("jane"), localAddress: IPAddress.Parse("127.0.0.3"));
        AssertRefused(await Record.ExceptionAsync(() => denied.GetAsync("/api/v1/pods")));
        using var allowed = gw.Client(gw.Pki.IssueClient("jane"), localAddress: IPAddress.Parse("127.0.0.4"));
        using var response = await allowed.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Refused_peer_gets_no_tls_bytes()
    {
        await using var gw = await GatewayTestHost.StartAsync("network:\n  allow: [127.0.0.1/32]");
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        var buffer = new byte[16];
        try
        {
            // The gateway closes the accepted socket at once; on a loaded machine the reset can reach the client while its
            // connect is still completing, so the reset may surface from ConnectAsync as well as from ReceiveAsync.
            await socket.ConnectAsync(gw.Uri.Host, gw.Uri.Port).WaitAsync(TimeSpan.FromSeconds(10));
            var read = await socket.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, read); // closed without a byte
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            // reset: also no bytes (a refused connect — nothing listening — is a different code and still fails the test)
        }
    }

    [Fact]
    public async Task Client_certificate_from_another_ca_fails_the_handshake()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using var intruder = gw.Client(gw.OtherPki.IssueClient("admin", "system:masters"));

        await Assert.ThrowsAsync<HttpRequestException>(() => intruder.GetAsync("/api/v1/pods"));

        Assert.Empty(gw.Upstream.Requests);
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        Assert.Matches(@"portcullis_tls_refused_client_certificates_total\{reason=""untrusted""\} [1-9]", await admin.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task Tls_below_1_2_is_refused()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(gw.Uri.Host, gw.Uri.Port).WaitAsync(TimeSpan.FromSeconds(10));
        using var tls = new System.Net.Security.SslStream(tcp.GetStream());
#pragma warning disable SYSLIB0039, CA5397, CA5359 // deliberately obsolete protocol: the server must refuse it
        var options = new System.Net.Security.SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls11,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        };
#pragma warning restore SYSLIB0039, CA5397, CA5359
        await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(options).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Rotated_server_certificate_applies_to_new_connections_without_restart()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        var first = await ServerThumbprintAsync(gw);

        var swapped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gw.Host.Snapshots.Swapped += _ => swapped.TrySetResult();
        TestPki.WritePem(gw.Pki.IssueServer(), Path.Combine(gw.Dir, "server.crt"), Path.Combine(gw.Dir, "server.key"));
        await swapped.Task.WaitAsync(TimeSpan.FromSeconds(20)); // the file watcher reloads on its own

        var second = await ServerThumbprintAsync(gw);
        Assert.NotEqual(first, second);
    }

    // Closed at accept: the client sees a failed request or, racing the close, a socket error.
    private static void AssertRefused(Exception? ex) =>
        Assert.True(ex is HttpRequestException or SocketException or IOException, $"expected the connection to be refused, got {ex?.GetType().Name ?? "a response"}");

    private static async Task<string> ServerThumbprintAsync(GatewayTestHost gw)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(gw.Uri.Host, gw.Uri.Port).WaitAsync(TimeSpan.FromSeconds(10));
        using var tls = new System.Net.Security.SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && gw.ValidateServer(cert),
        }).WaitAsync(TimeSpan.FromSeconds(10));
        return tls.RemoteCertificate!.GetCertHashString();
    }
}
