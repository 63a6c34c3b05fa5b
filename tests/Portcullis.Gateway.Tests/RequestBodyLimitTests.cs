using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 13, finding 9: a request body over <c>limits.maxRequestBodyBytes</c> is answered with kube-apiserver's 413
/// before anything is sent upstream, and audited; streams kube-apiserver does not limit are not limited.
/// </summary>
public sealed class RequestBodyLimitTests
{
    private const string Policy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Request
        """;

    private static Task<GatewayTestHost> StartAsync(string limits = "") =>
        GatewayTestHost.StartAsync("audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking\n" + limits,
            modes: "[RBAC]", files: new() { ["audit-policy.yaml"] = Policy });

    private static string Status413(int limit) =>
        $$"""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Request entity too large: limit is {{limit}}","reason":"RequestEntityTooLarge","code":413}""";

    /// <summary>
    /// Sends <paramref name="request"/> and reads the response as it arrives (head, then Content-Length bytes), without
    /// waiting for the connection to close: a client still holding an unfinished body open is answered first.
    /// </summary>
    private static async Task<string> SendAndReadResponseAsync(GatewayTestHost gw, string request)
    {
        await using var tls = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("jane", "developers"));
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request.ReplaceLineEndings("\r\n")));
        var received = new List<byte>();
        var one = new byte[1];
        while (!Encoding.ASCII.GetString([.. received]).EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            Assert.Equal(1, await tls.ReadAsync(one).AsTask().WaitAsync(TimeSpan.FromSeconds(15)));
            received.Add(one[0]);
        }
        var head = Encoding.ASCII.GetString([.. received]);
        var length = int.Parse(System.Text.RegularExpressions.Regex.Match(head, @"Content-Length: (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var body = new byte[length];
        await tls.ReadExactlyAsync(body).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        return head + Encoding.UTF8.GetString(body);
    }

    private static string BodyOf(string response) => response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];

    private static void AssertRefusedAndAudited(JsonElement e, int limit)
    {
        Assert.Equal("create", e.GetProperty("verb").GetString());
        Assert.Equal("jane", e.GetProperty("user").GetProperty("username").GetString());
        var status = e.GetProperty("responseStatus");
        Assert.Equal(413, status.GetProperty("code").GetInt32());
        Assert.Equal("RequestEntityTooLarge", status.GetProperty("reason").GetString());
        Assert.Equal($"Request entity too large: limit is {limit}", status.GetProperty("message").GetString());
        var annotations = e.GetProperty("annotations");
        Assert.Equal("http", annotations.GetProperty("portcullis.dev/rejected-by").GetString());
        Assert.EndsWith($"is larger than limits.maxRequestBodyBytes ({limit} bytes)", annotations.GetProperty("portcullis.dev/reason").GetString());
        Assert.Equal("true", annotations.GetProperty("audit.k8s.io/truncated").GetString());
    }

    [Fact]
    public async Task A_64_MB_Content_Length_is_refused_at_once_with_kube_apiservers_413_and_nothing_goes_upstream()
    {
        await using var gw = await StartAsync();

        // Only the head is sent: the answer must come without the gateway reading (or forwarding) any of the body.
        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"),
            "POST /api/v1/namespaces/dev/configmaps HTTP/1.1\nHost: localhost\nContent-Type: application/json\nContent-Length: 67108864\n\n");

        Assert.StartsWith("HTTP/1.1 413", response);
        Assert.Contains("\r\nConnection: close\r\n", response);
        Assert.Equal(Status413(3145728), BodyOf(response));
        Assert.Empty(gw.Upstream.Requests);
        var events = await AuditFidelityTests.EventsAfterStopAsync(gw);
        AssertRefusedAndAudited(Assert.Single(events), 3145728);
    }

    [Fact]
    public async Task A_chunked_body_is_counted_and_refused_when_it_passes_the_configured_limit()
    {
        await using var gw = await StartAsync("limits:\n  maxRequestBodyBytes: 1000");
        var chunk = new string('x', 600);

        // Two chunks of 600 bytes and no end: the gateway must answer once the count passes 1000, not wait for more.
        var response = await SendAndReadResponseAsync(gw,
            $"POST /api/v1/namespaces/dev/configmaps HTTP/1.1\nHost: localhost\nContent-Type: application/json\nTransfer-Encoding: chunked\n\n258\n{chunk}\n258\n{chunk}\n");

        Assert.StartsWith("HTTP/1.1 413", response);
        Assert.Equal(Status413(1000), BodyOf(response));
        Assert.Empty(gw.Upstream.Requests);
        AssertRefusedAndAudited(Assert.Single(await AuditFidelityTests.EventsAfterStopAsync(gw)), 1000);
    }

    [Fact]
    public async Task A_body_at_the_configured_limit_is_forwarded_whole()
    {
        await using var gw = await StartAsync("limits:\n  maxRequestBodyBytes: 1000");
        var body = Encoding.UTF8.GetBytes("""{"kind":"ConfigMap","metadata":{"name":"fits"},"data":{"k":" """ + new string('x', 1000 - 64) + "\"}}");
        Assert.Equal(1000, body.Length);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        using var response = await jane.PostAsync("/api/v1/namespaces/dev/configmaps", new ByteArrayContent(body)).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body, Assert.Single(gw.Upstream.Requests).Body);
    }

    [Fact]
    public async Task A_large_HTTP2_body_is_refused_the_same_way()
    {
        await using var gw = await StartAsync("limits:\n  maxRequestBodyBytes: 1000");
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"), version: HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new StringContent("{\"data\":\"" + new string('x', 2000) + "\"}", Encoding.UTF8, "application/json"),
        };

        using var response = await jane.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(Status413(1000), await response.Content.ReadAsStringAsync());
        Assert.Empty(gw.Upstream.Requests);
    }

    [Fact]
    public async Task An_exec_stream_is_not_limited()
    {
        await using var gw = await StartAsync("limits:\n  maxRequestBodyBytes: 100");
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("v5.channel.k8s.io");
        socket.Options.ClientCertificates = [gw.Pki.IssueClient("jane", "developers")];
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && gw.ValidateServer(cert);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var stdin = new byte[1000];
        stdin[0] = 0; // channel 0: stdin
        Array.Fill(stdin, (byte)'x', 1, stdin.Length - 1);

        await socket.ConnectAsync(new Uri($"wss://{gw.Uri.Authority}/api/v1/namespaces/dev/pods/p1/exec?command=cat&stdin=true"), cancel.Token);
        await socket.SendAsync(stdin, WebSocketMessageType.Binary, true, cancel.Token);
        var echo = new byte[2048];
        var received = await socket.ReceiveAsync(echo, cancel.Token);

        // The upstream echoes what it read of the 1,000-byte message: the stream went through, ten times the body limit.
        Assert.True(received.Count > 0);
        Assert.Equal(stdin.AsSpan(0, received.Count).ToArray(), echo.AsSpan(0, received.Count).ToArray());
        Assert.Single(gw.Upstream.Requests);
    }

    [Fact]
    public async Task An_Upgrade_header_does_not_carry_a_body_past_the_limit()
    {
        await using var gw = await StartAsync("limits:\n  maxRequestBodyBytes: 1000");
        var body = new string('x', 5000);

        // Upgrades are not limited, so a create dressed as one must not take its body past the limit: Kestrel does not
        // treat a request with content as upgradable, so the limit applies as to any create.
        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("jane", "developers"),
            $"POST /api/v1/namespaces/dev/configmaps HTTP/1.1\nHost: localhost\nConnection: Upgrade\nUpgrade: websocket\nContent-Length: {body.Length}\n\n{body}");

        Assert.StartsWith("HTTP/1.1 413", response);
        Assert.Empty(gw.Upstream.Requests);
    }

    [Fact]
    public async Task A_long_running_proxy_upload_is_not_limited()
    {
        await using var gw = await StartAsync("limits:\n  maxRequestBodyBytes: 100");
        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        var body = new byte[5000];
        Array.Fill(body, (byte)'y');

        using var response = await root.PostAsync("/api/v1/namespaces/dev/pods/p1/proxy/upload", new ByteArrayContent(body)).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body, Assert.Single(gw.Upstream.Requests).Body);
    }
}
