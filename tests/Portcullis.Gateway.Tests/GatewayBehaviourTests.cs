using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

public sealed class GatewayBehaviourTests
{
    [Fact]
    public async Task Upgrade_refused_by_the_upstream_is_not_tunnelled()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        await using var tls = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("jane"));
        var request = "POST /api/v1/namespaces/dev/pods/p1/exec?command=sh HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n";
        // Bytes sent before any 101: they must never reach the upstream as a tunnel or as a request of the gateway's.
        var smuggled = "GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        await tls.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request + smuggled));

        var text = await RawHttps.ReadToEndAsync(tls);

        Assert.StartsWith("HTTP/1.1 403", text);
        Assert.DoesNotContain("101 Switching", text);
        var seen = gw.Upstream.Requests;
        Assert.Equal("/api/v1/namespaces/dev/pods/p1/exec?command=sh", seen[0].PathAndQuery);
        // The trailing request was parsed by the gateway as a request of its own, authenticated and impersonated as jane.
        Assert.All(seen, r => Assert.Equal(["jane"], r.Values("Impersonate-User")));
    }

    [Fact]
    public async Task WebSocket_exec_is_tunnelled_after_the_upstream_answers_101()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("v5.channel.k8s.io");
        socket.Options.ClientCertificates = [gw.Pki.IssueClient("jane")];
        socket.Options.RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && gw.ValidateServer(cert);
        var uri = new Uri($"wss://{gw.Uri.Authority}/api/v1/namespaces/dev/pods/p1/exec?command=echo");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));

        await socket.ConnectAsync(uri, timeout.Token);
        await socket.SendAsync(new byte[] { 0, (byte)'h', (byte)'i' }, WebSocketMessageType.Binary, true, timeout.Token);
        var buffer = new byte[64];
        var result = await socket.ReceiveAsync(buffer, timeout.Token);

        Assert.Equal("v5.channel.k8s.io", socket.SubProtocol);
        Assert.Equal(new byte[] { 0, (byte)'h', (byte)'i' }, buffer[..result.Count]);
        var seen = Assert.Single(gw.Upstream.Requests);
        Assert.Equal(["jane"], seen.Values("Impersonate-User"));
    }

    [Fact]
    public async Task Unreachable_upstream_is_503_status()
    {
        await using var gw = await GatewayTestHost.StartAsync(upstreamDown: true);
        using var client = gw.Client(gw.Pki.IssueClient("jane"));
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the upstream kube-apiserver is unavailable","reason":"ServiceUnavailable","code":503}""",
            await response.Content.ReadAsStringAsync());

        await gw.Host.FirstUpstreamProbe.WaitAsync(TimeSpan.FromSeconds(10));
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        using var ready = await admin.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
    }

    [Fact]
    public async Task Upstream_timeout_is_504_status()
    {
        await using var gw = await GatewayTestHost.StartAsync(); // upstream.requestTimeout: 2s
        using var client = gw.Client(gw.Pki.IssueClient("jane"));
        using var response = await client.GetAsync("/slow");
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("\"reason\":\"Timeout\"", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RequestHeader_mode_sends_x_remote_headers()
    {
        await using var gw = await GatewayTestHost.StartAsync(identity: "RequestHeader");
        using var client = gw.Client(gw.Pki.IssueClient("jane", "developers", "qa"));
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(gw.Upstream.Requests);
        Assert.Equal(["jane"], seen.Values("X-Remote-User"));
        Assert.Equal(["developers", "qa"], seen.Values("X-Remote-Group"));
        Assert.Empty(seen.NamesLike("Impersonate-"));
    }

    [Fact]
    public async Task Passthrough_forwards_the_bearer_token_and_refuses_client_certificates_with_a_reason()
    {
        await using var gw = await GatewayTestHost.StartAsync(identity: "Passthrough");
        using (var client = gw.Client())
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "token-jane");
            using var response = await client.GetAsync("/api/v1/pods");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var seen = Assert.Single(gw.Upstream.Requests);
            Assert.Equal(["Bearer token-jane"], seen.Values("Authorization"));
            Assert.Empty(seen.NamesLike("Impersonate-"));
        }
        using var x509 = gw.Client(gw.Pki.IssueClient("jane"));
        using var refused = await x509.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("Passthrough", await refused.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AlwaysDeny_answers_kube_apiservers_403_and_system_masters_still_passes()
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[AlwaysDeny]");
        using var jane = gw.Client(gw.Pki.IssueClient("jane"));
        using var denied = await jane.GetAsync("/api/v1/namespaces/default/pods");
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\": Everything is forbidden.","reason":"Forbidden","details":{"kind":"pods"},"code":403}""",
            await denied.Content.ReadAsStringAsync());
        Assert.Equal("nosniff", denied.Headers.GetValues("X-Content-Type-Options").Single());

        using var root = gw.Client(gw.Pki.IssueClient("root", "system:masters"));
        using var allowed = await root.GetAsync("/api/v1/namespaces/default/pods");
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task Admin_endpoints_report_health_readiness_and_kube_apiserver_metrics()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using (var client = gw.Client(gw.Pki.IssueClient("jane")))
        using (var r = await client.GetAsync("/api/v1/namespaces/dev/pods"))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        await gw.Host.FirstUpstreamProbe.WaitAsync(TimeSpan.FromSeconds(10));
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        Assert.Equal("ok", await admin.GetStringAsync("/healthz"));
        Assert.Equal("ok", await admin.GetStringAsync("/livez"));
        Assert.Equal("ok", await admin.GetStringAsync("/readyz"));
        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Contains("apiserver_request_total{verb=\"LIST\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"\",scope=\"namespace\",component=\"apiserver\",code=\"200\"} 1", metrics);
        Assert.Contains("authentication_attempts{result=\"success\"} 1", metrics);
        Assert.Contains("portcullis_authentication_attempts_total{authenticator=\"x509\",result=\"success\"} 1", metrics);
        Assert.Contains("portcullis_config_reload_failures_total 0", metrics);
    }

    [Fact]
    public async Task Main_listener_forwards_healthz_through_the_layers()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using var anonymous = gw.Client();
        using var response = await anonymous.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task An_upstream_kubeconfig_with_an_exec_plugin_is_refused_with_file_line_and_field()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        var kubeconfig = Path.Combine(gw.Dir, "upstream.kubeconfig");
        File.WriteAllText(kubeconfig, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: upstream
              cluster: {"{"}server: "{gw.Upstream.Uri}", certificate-authority: ca.crt{"}"}
            users:
            - name: eks
              user:
                exec: {"{"}apiVersion: client.authentication.k8s.io/v1beta1, command: aws{"}"}
            contexts:
            - name: upstream
              context: {"{"}cluster: upstream, user: eks{"}"}
            current-context: upstream
            """);

        var errors = gw.Host.Reload();

        var error = Assert.Single(errors);
        Assert.Equal(Path.GetFullPath(kubeconfig), error.File);
        Assert.Equal(9, error.Line);
        Assert.Equal("users.user.exec", error.Field);
        using var client = gw.Client(gw.Pki.IssueClient("jane"));
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // the old configuration keeps serving
    }

    [Fact]
    public async Task Invalid_reload_keeps_serving_the_old_configuration()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        File.WriteAllText(gw.ConfigPath, "apiVersion: portcullis.dev/v1alpha1\nkind: GatewayConfiguration\ntls: {certFile: gone.crt}\n");

        var errors = gw.Host.Reload();

        Assert.NotEmpty(errors);
        using var client = gw.Client(gw.Pki.IssueClient("jane"));
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        Assert.Matches(@"portcullis_config_reload_failures_total [1-9]", await admin.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task Changed_token_file_is_picked_up_by_the_watcher()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        var swapped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gw.Host.Snapshots.Swapped += _ => swapped.TrySetResult();

        File.WriteAllText(Path.Combine(gw.Dir, "tokens.csv"), "token-new,newbie,u-9\n");
        await swapped.Task.WaitAsync(TimeSpan.FromSeconds(20));

        using var client = gw.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "token-new");
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "token-jane");
        using var old = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.Unauthorized, old.StatusCode);
    }

    [Fact]
    public async Task Port_in_use_names_the_address_and_starts_nothing()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using var blocker = new TcpListener(IPAddress.Loopback, 0);
        blocker.Start();
        var port = ((IPEndPoint)blocker.LocalEndpoint).Port;

        await using var second = GatewayHost.Create(gw.ConfigPath, new GatewayHostOptions { ListenOverride = $"127.0.0.1:{port}", AdminOverride = "127.0.0.1:0" });
        var ex = await Assert.ThrowsAsync<GatewayStartException>(() => second.StartAsync());

        Assert.Contains($"127.0.0.1:{port}", ex.Message);
        Assert.Null(second.AdminUri);
    }

    [Fact]
    public async Task Malformed_configuration_lists_every_error()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        var bad = Path.Combine(gw.Dir, "bad.yaml");
        File.WriteAllText(bad, "apiVersion: portcullis.dev/v1alpha1\nkind: GatewayConfiguration\ntls:\n  certFile: nope.crt\n  keyFile: nope.key\nupstream: {kubeconfig: nope}\n");
        var ex = Assert.Throws<ConfigurationException>(() => GatewayHost.Create(bad));
        Assert.Equal(3, ex.Errors.Count);
        Assert.Contains(ex.Errors, e => e.Field == "tls.keyFile" && e.Message.Contains("nope.key", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Graceful_stop_lets_in_flight_requests_finish_and_closes_watches()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using var client = gw.Client(gw.Pki.IssueClient("jane"));
        var inFlight = client.GetAsync("/slow");
        await gw.Upstream.SlowStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        using var watch = await client.GetAsync("/api/v1/pods?watch=true", HttpCompletionOption.ResponseHeadersRead);
        var watchBody = await watch.Content.ReadAsStreamAsync();
        var reader = new StreamReader(watchBody);
        Assert.Contains("\"one\"", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));

        var stopping = gw.Host.StopAsync();
        gw.Upstream.ReleaseSlow.SetResult();

        using var finished = await inFlight.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(HttpStatusCode.OK, finished.StatusCode);
        Assert.Equal("slow done", await finished.Content.ReadAsStringAsync());
        await stopping.WaitAsync(TimeSpan.FromSeconds(15));
        // The watch was closed by the gateway rather than left hanging.
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
            if (line is null)
            {
                throw new EndOfStreamException();
            }
        });
    }
}
