using System.Buffers.Text;
using System.Net.WebSockets;
using System.Text;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 4, item 8: the bearer token in the WebSocket subprotocol list (<c>base64url.bearer.authorization.k8s.io.&lt;token&gt;</c>,
/// how browsers and kubectl's WebSocket executor send one) authenticates like an Authorization header, and the entry is
/// stripped before the request goes upstream.
/// </summary>
public sealed class WebSocketTokenTests
{
    private const string BearerPrefix = "base64url.bearer.authorization.k8s.io.";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static ClientWebSocket Socket(GatewayTestHost gw, string token)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("v5.channel.k8s.io");
        socket.Options.AddSubProtocol(BearerPrefix + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(token)));
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && gw.ValidateServer(cert);
        return socket; // no client certificate: the token is the only credential
    }

    private static Uri ExecUri(GatewayTestHost gw) => new($"wss://{gw.Uri.Authority}/api/v1/namespaces/dev/pods/p1/exec?command=echo");

    [Fact]
    public async Task Subprotocol_token_from_the_token_file_authenticates_the_exec_and_never_reaches_the_upstream()
    {
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);
        using var socket = Socket(gw, "token-jane"); // tokens.csv: token-jane → jane, groups developers and qa
        using var cancel = new CancellationTokenSource(Timeout);

        await socket.ConnectAsync(ExecUri(gw), cancel.Token).WaitAsync(Timeout);
        await socket.SendAsync(new byte[] { 0, (byte)'h', (byte)'i' }, WebSocketMessageType.Binary, true, cancel.Token).WaitAsync(Timeout);
        var buffer = new byte[64];
        var received = await socket.ReceiveAsync(buffer, cancel.Token).WaitAsync(Timeout);

        Assert.Equal("v5.channel.k8s.io", socket.SubProtocol);
        Assert.Equal(new byte[] { 0, (byte)'h', (byte)'i' }, buffer[..received.Count]);
        var seen = Assert.Single(gw.Upstream.Requests);
        Assert.Equal("/api/v1/namespaces/dev/pods/p1/exec?command=echo", seen.PathAndQuery);
        Assert.Equal(["jane"], seen.Values("Impersonate-User"));
        Assert.Equal(["developers", "qa"], seen.Values("Impersonate-Group")); // system:authenticated is added by the upstream itself
        // The subprotocol list the upstream saw is the client's minus the bearer entry; no other header carries the token.
        var protocols = seen.Values("Sec-WebSocket-Protocol").SelectMany(v => v.Split(',')).Select(p => p.Trim()).ToArray();
        Assert.Equal(["v5.channel.k8s.io"], protocols);
        Assert.True(seen.Headers.All(h => h.Value.All(v => !v.Contains("bearer.authorization", StringComparison.OrdinalIgnoreCase))),
            "a header forwarded upstream still carries the bearer subprotocol entry");
        Assert.True(seen.Headers.All(h => h.Value.All(v => !v.Contains("token-jane", StringComparison.Ordinal))),
            "a header forwarded upstream carries the token");
        Assert.Empty(seen.Values("Authorization"));
    }

    [Fact]
    public async Task Unknown_subprotocol_token_is_401_and_nothing_reaches_the_upstream()
    {
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);
        using var socket = Socket(gw, "not-a-token");
        using var cancel = new CancellationTokenSource(Timeout);

        var refused = await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(ExecUri(gw), cancel.Token).WaitAsync(Timeout));

        Assert.Contains("401", refused.Message, StringComparison.Ordinal);
        Assert.Empty(gw.Upstream.Requests);
    }

    [Fact]
    public async Task Subprotocol_token_alone_without_another_subprotocol_is_401()
    {
        // kube-apiserver: "missing additional subprotocol" — the token entry cannot be the only one.
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(BearerPrefix + Base64Url.EncodeToString("token-jane"u8));
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && gw.ValidateServer(cert);
        using var cancel = new CancellationTokenSource(Timeout);

        var refused = await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(ExecUri(gw), cancel.Token).WaitAsync(Timeout));

        Assert.Contains("401", refused.Message, StringComparison.Ordinal);
        Assert.Empty(gw.Upstream.Requests);
    }
}
