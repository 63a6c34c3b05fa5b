using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// <c>tls.clientCertificates.maxLifetime</c> and <c>action</c>, driven by the real <c>openssl s_client</c> and <c>curl</c>
/// against <c>portcullis serve</c> (its log read from its output), and a reload through the in-process host.
/// </summary>
public sealed partial class CertificateLifetimeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private const string Request = "GET /api/v1/namespaces/dev/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

    [Fact]
    public async Task A_400_day_certificate_is_refused_at_the_handshake_with_action_refuse_and_a_30_day_one_is_served()
    {
        var openssl = ExternalTool.Find("openssl");
        var curl = ExternalTool.Find("curl");
        Assert.True(openssl is not null && curl is not null, "openssl and curl must be on PATH for this test");
        using var folder = new ConfigFolder();
        await using var upstream = await RecordingUpstream.StartAsync(folder.Pki.IssueServer(), folder.Pki.Certificate);
        folder.Write("upstream.kubeconfig", folder.Kubeconfig(server: upstream.Uri));
        folder.WriteConfig(tls: "clientCertificates: {maxLifetime: 90d, action: refuse}");
        TestPki.WritePem(folder.Pki.IssueClient(TimeSpan.FromDays(400), "root", "system:masters"), folder.Path("long.crt"), folder.Path("long.key"));
        TestPki.WritePem(folder.Pki.IssueClient(TimeSpan.FromDays(30), "root", "system:masters"), folder.Path("short.crt"), folder.Path("short.key"));
        await using var serve = await ServeProcess.StartAsync(folder);

        var refusedOpenssl = await OpensslAsync(openssl!, serve, folder, "long");
        var servedOpenssl = await OpensslAsync(openssl!, serve, folder, "short");
        var refusedCurl = await CurlAsync(curl!, serve, folder, "long");
        var servedCurl = await CurlAsync(curl!, serve, folder, "short");

        // Refused in the handshake: the server closes the TLS connection without an HTTP answer (openssl: unexpected eof).
        Assert.NotEqual(0, refusedOpenssl.ExitCode);
        Assert.DoesNotContain("HTTP/1.1", refusedOpenssl.Stdout, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", servedOpenssl.Stdout, StringComparison.Ordinal);
        Assert.NotEqual(0, refusedCurl.ExitCode);
        Assert.Equal("000", refusedCurl.Stdout);
        Assert.True(servedCurl.ExitCode == 0 && servedCurl.Stdout == "200", servedCurl.ToString());
        Assert.Equal(2, upstream.Requests.Count); // only the 30-day certificate's requests went upstream

        var metrics = await serve.MetricsAsync();
        Assert.Contains("portcullis_tls_refused_client_certificates_total{reason=\"lifetime\"} 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_tls_refused_client_certificates_total{reason=\"untrusted\"} 0\n", metrics, StringComparison.Ordinal);
        var line = await serve.WaitForLineAsync("longer than tls.clientCertificates.maxLifetime");
        Assert.Contains("Client certificate refused: ", line, StringComparison.Ordinal);
        Assert.Contains("CN=root", line, StringComparison.Ordinal);
        Assert.Contains(" is valid for 400d, longer than tls.clientCertificates.maxLifetime 90d", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_action_warn_a_400_day_certificate_is_served_logged_counted_and_annotated_in_the_audit_event()
    {
        var curl = ExternalTool.Find("curl");
        Assert.True(curl is not null, "curl must be on PATH for this test");
        using var folder = new ConfigFolder();
        await using var upstream = await RecordingUpstream.StartAsync(folder.Pki.IssueServer(), folder.Pki.Certificate);
        folder.Write("upstream.kubeconfig", folder.Kubeconfig(server: upstream.Uri));
        folder.WriteConfig(tls: "clientCertificates: {maxLifetime: 90, action: warn}");
        TestPki.WritePem(folder.Pki.IssueClient(TimeSpan.FromDays(400), "root", "system:masters"), folder.Path("long.crt"), folder.Path("long.key"));
        await using var serve = await ServeProcess.StartAsync(folder);

        var served = await CurlAsync(curl!, serve, folder, "long");

        Assert.True(served.ExitCode == 0 && served.Stdout == "200", served.ToString());
        Assert.Single(upstream.Requests);
        var line = await serve.WaitForLineAsync("accepted with a warning");
        Assert.Contains("CN=root", line, StringComparison.Ordinal);
        Assert.Contains(" is valid for 400d, longer than tls.clientCertificates.maxLifetime 90d (action: warn)", line, StringComparison.Ordinal);
        Assert.Contains(" warn: Portcullis.Gateway[43] ", line, StringComparison.Ordinal);
        var metrics = await serve.MetricsAsync();
        Assert.Contains("portcullis_tls_client_certificate_lifetime_warnings_total 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_tls_refused_client_certificates_total{reason=\"lifetime\"} 0\n", metrics, StringComparison.Ordinal);
        var audit = await AuditEventAsync(folder.Path("audit.log"), "portcullis.dev/certificate-lifetime");
        Assert.Equal("400d exceeds 90d", audit.GetProperty("annotations").GetProperty("portcullis.dev/certificate-lifetime").GetString());
        Assert.Equal("root", audit.GetProperty("user").GetProperty("username").GetString());
    }

    [Fact]
    public async Task A_reload_changes_the_policy_for_the_next_handshake_whatever_the_validator_cached()
    {
        using var folder = new ConfigFolder();
        await using var upstream = await RecordingUpstream.StartAsync(folder.Pki.IssueServer(), folder.Pki.Certificate);
        folder.Write("upstream.kubeconfig", folder.Kubeconfig(server: upstream.Uri));
        var options = ConfigurationPipelineTests.Quiet(reloadDelay: TimeSpan.FromMilliseconds(100));
        await using var host = GatewayHost.Create(folder.ConfigPath, new GatewayHostOptions
        {
            ListenOverride = options.ListenOverride,
            AdminOverride = options.AdminOverride,
            MinimumLogLevel = options.MinimumLogLevel,
            ReloadDelay = options.ReloadDelay,
            ReloadPollInterval = TimeSpan.FromMilliseconds(200),
            UpstreamProbeInterval = options.UpstreamProbeInterval,
        });
        await host.StartAsync().WaitAsync(Timeout);
        var longLived = folder.Pki.IssueClient(TimeSpan.FromDays(400), "root", "system:masters");
        var shortLived = folder.Pki.IssueClient(TimeSpan.FromDays(30), "root", "system:masters");

        // No limit: served, and the chain result is cached by the certificate's hash.
        Assert.Equal(HttpStatusCode.OK, await GetAsync(folder, host, longLived));

        await ReloadAsync(folder, host, "clientCertificates: {maxLifetime: 90d}"); // action defaults to refuse
        Assert.Null(await GetAsync(folder, host, longLived));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(folder, host, shortLived));

        await ReloadAsync(folder, host, "clientCertificates: {maxLifetime: 90d, action: warn}");
        Assert.Equal(HttpStatusCode.OK, await GetAsync(folder, host, longLived));

        await ReloadAsync(folder, host, "clientCertificates: {maxLifetime: 2h}");
        Assert.Null(await GetAsync(folder, host, shortLived));
    }

    private static async Task ReloadAsync(ConfigFolder folder, GatewayHost host, string tls)
    {
        var swapped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Snapshots.Swapped += _ => swapped.TrySetResult();
        folder.WriteConfig(tls: tls);
        await swapped.Task.WaitAsync(Timeout);
    }

    /// <summary>A request over a new connection (a new handshake); null when the handshake fails.</summary>
    private static async Task<HttpStatusCode?> GetAsync(ConfigFolder folder, GatewayHost host, X509Certificate2 clientCertificate)
    {
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && folder.Trusts(cert),
                ClientCertificates = [clientCertificate],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate,
            },
        };
        using var client = new HttpClient(handler) { BaseAddress = host.ListenUris[0], Timeout = Timeout };
        try
        {
            using var response = await client.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static Task<CliResult> OpensslAsync(string openssl, ServeProcess serve, ConfigFolder folder, string cert) =>
        ExternalTool.RunAsync(openssl, ["s_client", "-quiet", "-connect", $"127.0.0.1:{serve.Uri.Port}", "-servername", "localhost",
            "-CAfile", folder.Path("clients-ca.crt"), "-verify_return_error", "-cert", folder.Path(cert + ".crt"), "-key", folder.Path(cert + ".key")],
            input: Request, timeout: Timeout);

    private static Task<CliResult> CurlAsync(string curl, ServeProcess serve, ConfigFolder folder, string cert) =>
        ExternalTool.RunAsync(curl, ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "--cacert", folder.Path("clients-ca.crt"),
            "--cert", folder.Path(cert + ".crt"), "--key", folder.Path(cert + ".key"), new Uri(serve.Uri, "/api/v1/namespaces/dev/pods").ToString()],
            timeout: Timeout);

    /// <summary>The newest audit event carrying <paramref name="annotation"/>, polled for until the deadline.</summary>
    private static async Task<JsonElement> AuditEventAsync(string path, string annotation)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            if (File.Exists(path))
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                foreach (var line in (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Reverse())
                {
                    var e = JsonDocument.Parse(line).RootElement;
                    if (e.TryGetProperty("annotations", out var a) && a.TryGetProperty(annotation, out _))
                    {
                        return e;
                    }
                }
            }
            Assert.True(DateTime.UtcNow < deadline, $"no audit event with {annotation} in {path}");
            await Task.Delay(50); // a poll interval with a deadline
        }
    }

    /// <summary><c>portcullis serve</c> as a child process on free loopback ports; its output is kept to read its log.</summary>
    private sealed partial class ServeProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly Lock _lock = new();
        private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private ServeProcess(Process process) => _process = process;

        public Uri Uri { get; private set; } = null!;
        public Uri AdminUri { get; private set; } = null!;

        public static async Task<ServeProcess> StartAsync(ConfigFolder folder)
        {
            var serve = new ServeProcess(PortcullisCli.Start("serve", "--config", folder.ConfigPath, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"));
            serve._process.OutputDataReceived += (_, e) => serve.OnLine(e.Data);
            serve._process.ErrorDataReceived += (_, e) => serve.OnLine(e.Data);
            serve._process.BeginOutputReadLine();
            serve._process.BeginErrorReadLine();
            try
            {
                await serve._listening.Task.WaitAsync(Timeout);
            }
            catch (TimeoutException)
            {
                await serve.DisposeAsync();
                throw new TimeoutException("portcullis serve did not start:\n" + serve.Output);
            }
            return serve;
        }

        public string Output
        {
            get
            {
                lock (_lock)
                {
                    return _output.ToString();
                }
            }
        }

        public async Task<string> MetricsAsync()
        {
            using var http = new HttpClient { BaseAddress = AdminUri, Timeout = Timeout };
            return await http.GetStringAsync("/metrics").WaitAsync(Timeout);
        }

        /// <summary>The first line of the log containing <paramref name="text"/>, polled for until the deadline.</summary>
        public async Task<string> WaitForLineAsync(string text)
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (true)
            {
                var line = Output.Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
                if (line is not null)
                {
                    return line;
                }
                Assert.True(DateTime.UtcNow < deadline, $"no log line with \"{text}\" in:\n{Output}");
                await Task.Delay(50); // a poll interval with a deadline
            }
        }

        private void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }
            lock (_lock)
            {
                _output.Append(line).Append('\n');
                if (Listening().Match(line) is { Success: true } l)
                {
                    Uri = new Uri("https://127.0.0.1:" + l.Groups[1].Value);
                }
                if (Admin().Match(line) is { Success: true } a)
                {
                    AdminUri = new Uri("http://127.0.0.1:" + a.Groups[1].Value);
                }
                if (Uri is not null && AdminUri is not null)
                {
                    _listening.TrySetResult();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            await _process.WaitForExitAsync().WaitAsync(Timeout);
            _process.Dispose();
        }

        [GeneratedRegex(@"listening on 127\.0\.0\.1:(\d+)")]
        private static partial Regex Listening();

        [GeneratedRegex(@"Admin endpoints on http://127\.0\.0\.1:(\d+)")]
        private static partial Regex Admin();
    }
}
