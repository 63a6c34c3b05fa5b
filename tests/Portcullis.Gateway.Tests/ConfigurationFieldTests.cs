using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Snapshots;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Fields whose effect no other test showed (docs/configuration.md names a test for every field): the listener and
/// admin addresses as written, tls.minVersion and tls.cipherSuites, authentication.anonymous.paths, upstream.context, admin.logFormat and
/// admin.drainTimeout.
/// </summary>
public sealed class ConfigurationFieldTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Listener_and_admin_addresses_are_the_configured_ones()
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(extra: "listeners:\n- address: 127.0.0.1:0\n", admin: "address: 127.0.0.1:0\n  drainTimeout: 2s");

        // No override: the addresses come from the file (the defaults would be 127.0.0.1:6443 and 127.0.0.1:9095).
        await using var host = GatewayHost.Create(folder.ConfigPath, new GatewayHostOptions { MinimumLogLevel = LogLevel.Warning, ReloadDelay = TimeSpan.FromHours(1) });
        await host.StartAsync().WaitAsync(Timeout);

        var listener = Assert.Single(host.ListenUris);
        Assert.Equal("127.0.0.1", listener.Host);
        Assert.NotEqual(6443, listener.Port);
        Assert.Equal("127.0.0.1", host.AdminUri!.Host);
        Assert.NotEqual(9095, host.AdminUri.Port);
        using var admin = new HttpClient { Timeout = Timeout };
        using var health = await admin.GetAsync(new Uri(host.AdminUri, "/healthz"));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Cipher_suites_are_the_only_ones_the_handshake_accepts()
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(tls: "cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]");
        if (!OperatingSystem.IsLinux())
        {
            // .NET applies a cipher-suite list on Linux only: elsewhere the field is refused rather than ignored.
            using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);
            Assert.Contains(load.Errors, e => e.Field == "tls.cipherSuites" && e.Message.StartsWith("not supported on this platform", StringComparison.Ordinal));
            return;
        }
        await using var host = GatewayHost.Create(folder.ConfigPath, ConfigurationPipelineTests.Quiet(TimeSpan.FromHours(1)));
        await host.StartAsync().WaitAsync(Timeout);
        await AssertOnlyListedSuiteIsAcceptedAsync(folder, host.ListenUris[0]);
    }

    [Fact]
    public async Task Anonymous_paths_are_the_only_paths_without_credentials()
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(authentication: "anonymous: {enabled: true, paths: [/healthz]}");
        await using var host = GatewayHost.Create(folder.ConfigPath, ConfigurationPipelineTests.Quiet(TimeSpan.FromHours(1)));
        await host.StartAsync().WaitAsync(Timeout);
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && folder.Trusts(cert) },
        };
        using var client = new HttpClient(handler) { BaseAddress = host.ListenUris[0], Timeout = Timeout };

        // /healthz: system:anonymous, whom RBAC then forbids (403); any other path: no credential, 401.
        using var listed = await client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.Forbidden, listed.StatusCode);
        Assert.Contains("system:anonymous", await listed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var other = await client.GetAsync("/api/v1/namespaces/dev/pods");
        Assert.Equal(HttpStatusCode.Unauthorized, other.StatusCode);
    }

    [Fact]
    public async Task Min_version_TLS_1_3_refuses_a_TLS_1_2_handshake()
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(tls: "minVersion: VersionTLS13");
        await using var host = GatewayHost.Create(folder.ConfigPath, ConfigurationPipelineTests.Quiet(TimeSpan.FromHours(1)));
        await host.StartAsync().WaitAsync(Timeout);

        Assert.Equal(SslProtocols.Tls13, await ProtocolAsync(SslProtocols.Tls13));
        await Assert.ThrowsAnyAsync<Exception>(() => ProtocolAsync(SslProtocols.Tls12));

        async Task<SslProtocols> ProtocolAsync(SslProtocols offered)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(host.ListenUris[0].Host, host.ListenUris[0].Port).WaitAsync(Timeout);
            await using var tls = new SslStream(tcp.GetStream());
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                EnabledSslProtocols = offered,
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && folder.Trusts(cert),
            }).WaitAsync(Timeout);
            return tls.SslProtocol;
        }
    }

    [Fact]
    public async Task Upstream_context_chooses_the_context_of_the_kubeconfig()
    {
        using var folder = new ConfigFolder();
        await using var upstream = await RecordingUpstream.StartAsync(folder.Pki.IssueServer(), folder.Pki.Certificate);
        // current-context points at a closed port: only upstream.context reaches the real upstream.
        folder.Write("upstream.kubeconfig", $$$"""
            apiVersion: v1
            kind: Config
            clusters:
            - {name: down, cluster: {server: "https://127.0.0.1:9", certificate-authority: upstream-ca.crt}}
            - {name: up, cluster: {server: "{{{upstream.Uri}}}", certificate-authority: upstream-ca.crt}}
            users:
            - {name: gateway, user: {client-certificate: gateway.crt, client-key: gateway.key}}
            contexts:
            - {name: down, context: {cluster: down, user: gateway}}
            - {name: up, context: {cluster: up, user: gateway}}
            current-context: down
            """);
        folder.WriteConfig(upstream: "context: up");
        await using var host = GatewayHost.Create(folder.ConfigPath, ConfigurationPipelineTests.Quiet(TimeSpan.FromHours(1)));
        await host.StartAsync().WaitAsync(Timeout);

        await ConfigurationPipelineTests.AssertServedAsync(folder, host, folder.Pki.IssueClient("root", "system:masters"));
        Assert.Contains(upstream.Requests, r => r.PathAndQuery == "/api/v1/namespaces/dev/pods");
    }

    [Fact]
    public void A_TLS_1_2_suite_with_minVersion_TLS_1_3_is_refused_as_having_no_effect()
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(tls: "minVersion: VersionTLS13\n  cipherSuites: [TLS_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]");

        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);

        var error = Assert.Single(load.Errors);
        Assert.Equal("tls.cipherSuites[1]", error.Field);
        Assert.Equal(folder.LineOf("portcullis.yaml", "cipherSuites:"), error.Line);
        Assert.StartsWith("has no effect: \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\" is a TLS 1.2 suite", error.Message, StringComparison.Ordinal);
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static async Task AssertOnlyListedSuiteIsAcceptedAsync(ConfigFolder folder, Uri endpoint)
    {
        // TLS 1.2: only the listed suite (a client certificate is optional: none is sent). Before, a list without a
        // TLS 1.3 suite made OpenSSL refuse every handshake, TLS 1.2 ones included ("protocol version").
        var listed = await HandshakeAsync(SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384);
        Assert.Equal(TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, listed);
        await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(SslProtocols.Tls12, TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256));
        // TLS 1.3: no TLS 1.3 suite is listed, so all three stay, as with kube-apiserver's --tls-cipher-suites.
        Assert.Equal(TlsCipherSuite.TLS_AES_128_GCM_SHA256, await HandshakeAsync(SslProtocols.Tls13, TlsCipherSuite.TLS_AES_128_GCM_SHA256));

        async Task<TlsCipherSuite> HandshakeAsync(SslProtocols protocol, TlsCipherSuite offered)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(endpoint.Host, endpoint.Port).WaitAsync(Timeout);
            await using var tls = new SslStream(tcp.GetStream());
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                EnabledSslProtocols = protocol,
                CipherSuitesPolicy = new CipherSuitesPolicy([offered]),
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && folder.Trusts(cert),
            }).WaitAsync(Timeout);
            return tls.NegotiatedCipherSuite;
        }
    }

    [Theory]
    [InlineData("json")]
    [InlineData("text")]
    public async Task Log_format_is_the_console_format(string format)
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(admin: $"logFormat: {format}\n  drainTimeout: 2s");

        using var serve = PortcullisCli.Start("serve", "--config", folder.ConfigPath, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0");
        string? line;
        try
        {
            // The first line the gateway writes once it listens; the process is then ended by its own handle.
            do
            {
                line = await serve.StandardOutput.ReadLineAsync().WaitAsync(Timeout);
            }
            while (line is not null && !line.Contains("listening on", StringComparison.Ordinal));
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync().WaitAsync(Timeout);
        }

        Assert.NotNull(line);
        if (format == "json")
        {
            using var json = JsonDocument.Parse(line);
            Assert.Equal("Portcullis.Gateway", json.RootElement.GetProperty("Category").GetString());
            Assert.Contains("listening on 127.0.0.1:", json.RootElement.GetProperty("Message").GetString(), StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains("info: Portcullis.Gateway[1] Portcullis listening on 127.0.0.1:", line, StringComparison.Ordinal);
            Assert.False(line.TrimStart().StartsWith('{'), line);
        }
    }

    [Fact]
    public async Task Drain_timeout_limits_how_long_a_stop_waits_for_a_request()
    {
        using var folder = new ConfigFolder();
        await using var upstream = await RecordingUpstream.StartAsync(folder.Pki.IssueServer(), folder.Pki.Certificate);
        folder.Write("upstream.kubeconfig", folder.Kubeconfig(server: upstream.Uri));
        folder.WriteConfig(admin: "drainTimeout: 1s");
        await using var host = GatewayHost.Create(folder.ConfigPath, ConfigurationPipelineTests.Quiet(TimeSpan.FromHours(1)));
        await host.StartAsync().WaitAsync(Timeout);
        var root = folder.Pki.IssueClient("root", "system:masters");
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && folder.Trusts(cert),
                ClientCertificates = [root],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => root,
            },
        };
        using var client = new HttpClient(handler) { BaseAddress = host.ListenUris[0], Timeout = Timeout };
        var slow = client.GetAsync("/slow"); // the upstream answers only when ReleaseSlow is set, which it never is here
        await upstream.SlowStarted.Task.WaitAsync(Timeout);

        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        await host.StopAsync().WaitAsync(Timeout);
        stopwatch.Stop();

        // 1 s to drain (plus at most 1 s for the audit flush), far below the 15 s default: the request was cut off.
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(8), $"stop took {stopwatch.Elapsed}");
        var outcome = await Record.ExceptionAsync(async () =>
        {
            using var response = await slow.WaitAsync(Timeout);
            Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
        });
        Assert.True(outcome is null or HttpRequestException or IOException, outcome?.ToString());
        upstream.ReleaseSlow.TrySetResult();
    }
}
