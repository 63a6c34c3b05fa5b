using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// <c>portcullis webhook --config</c> as its own process, as an operator runs it: the minimal configuration and the command
/// line that docs/webhook.md "Running it" gives (read from the page, ports set to 0), files made by the test with
/// <see cref="TestPki"/>, reviews over real HTTP/2 and mutual TLS, a deny-list edit picked up by the running process,
/// SIGTERM, and the exit code and stderr of a refused configuration.
/// </summary>
public sealed partial class WebhookProcessTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-e2e-webhook-process-").FullName;
    private readonly TestPki _serving = new("webhook-serving-ca");
    private readonly TestPki _apiServerClients = new("apiserver-webhook-client-ca");
    private readonly TestPki _intruders = new("intruder-ca");

    private string ConfigPath => Path.Combine(_dir, "webhook.yaml");

    private const string DenyList = """
        apiVersion: portcullis.dev/v1alpha1
        kind: DenyList
        entries:
        - {user: mallory, reason: left the team}

        """;

    private const string TokenReview = """{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"token-jane"}}""";

    private const string AliceCreatesPersistentVolumes = """
        {"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"verb":"create","version":"v1","resource":"persistentvolumes"},"user":"alice","groups":["system:authenticated"]}}
        """;

    // ---- docs/webhook.md "Running it": the configuration and the command line, as the page gives them ----

    private static string WebhookDoc() => File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "webhook.md"));

    /// <summary>The first ```yaml block after "A minimal configuration, `webhook.yaml`".</summary>
    private static string DocumentedConfiguration()
    {
        var doc = WebhookDoc();
        var at = doc.IndexOf("A minimal configuration, `webhook.yaml`", StringComparison.Ordinal);
        Assert.True(at >= 0, "docs/webhook.md has no \"A minimal configuration, `webhook.yaml`\"");
        var start = doc.IndexOf("```yaml\n", at, StringComparison.Ordinal) + "```yaml\n".Length;
        var end = doc.IndexOf("```", start, StringComparison.Ordinal);
        return doc[start..end];
    }

    /// <summary>The arguments of the documented command line (<c>portcullis webhook --config webhook.yaml --listen …</c>), every port made 0.</summary>
    private static string[] DocumentedArguments()
    {
        var line = WebhookDoc().Split('\n').First(l => l.StartsWith("portcullis webhook --config webhook.yaml --listen ", StringComparison.Ordinal));
        return [.. line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(a => PortRegex().Replace(a, ":0"))];
    }

    [GeneratedRegex(":[0-9]+$")]
    private static partial Regex PortRegex();

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Portcullis.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Portcullis.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The files the documented configuration names, beside it, and the configuration (changed by <paramref name="edit"/>).</summary>
    private void WriteFiles(Func<string, string>? edit = null)
    {
        WebhookFiles.Write(_dir, _serving, _apiServerClients.CertificatePem, "token-jane,jane,u-1,\"developers,qa\"\n", DenyList,
            certFile: "webhook.crt", keyFile: "webhook.key", clientCAFile: "apiserver-webhook-client-ca.crt");
        File.WriteAllText(Path.Combine(_dir, "audit-policy.yaml"), "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n");
        var config = DocumentedConfiguration();
        File.WriteAllText(ConfigPath, edit is null ? config : edit(config));
    }

    [Fact]
    public async Task The_documented_webhook_process_reviews_over_http2_mtls_reloads_a_deny_list_edit_and_exits_0_on_sigterm()
    {
        WriteFiles();
        await using var webhook = await WebhookProcess.StartAsync(DocumentedArguments(), _dir);
        Assert.Equal(["webhook", "--config", "webhook.yaml", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"], webhook.Arguments);

        using var apiServer = Client(webhook.Webhook, _apiServerClients.IssueClient("kube-apiserver-webhook-client"));
        using var admin = new HttpClient { BaseAddress = webhook.Admin, Timeout = Timeout };

        // A TokenReview: the token file's user, in kube-apiserver's wire format, over HTTP/2.
        var (version, code, body) = await PostAsync(apiServer, "/authenticate", TokenReview);
        Assert.Equal(HttpVersion.Version20, version);
        Assert.True(code == HttpStatusCode.OK, body);
        using (var review = JsonDocument.Parse(body))
        {
            var status = review.RootElement.GetProperty("status");
            Assert.True(status.GetProperty("authenticated").GetBoolean(), body);
            Assert.Equal("jane", status.GetProperty("user").GetProperty("username").GetString());
            Assert.Contains("developers", status.GetProperty("user").GetProperty("groups").EnumerateArray().Select(g => g.GetString()));
        }
        Assert.DoesNotContain("token-jane", body, StringComparison.Ordinal);

        // A SubjectAccessReview Portcullis' RBAC allows.
        Assert.Equal((true, false), await SarAsync(apiServer));

        // No client certificate, or one of another CA: refused at the handshake, counted by reason, nothing answered.
        using (var anonymous = Client(webhook.Webhook, null))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => PostAsync(anonymous, "/authorize", AliceCreatesPersistentVolumes));
        }
        using (var intruder = Client(webhook.Webhook, _intruders.IssueClient("kube-apiserver-webhook-client")))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => PostAsync(intruder, "/authorize", AliceCreatesPersistentVolumes));
        }
        var metrics = await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
        Assert.Matches("portcullis_tls_refused_client_certificates_total\\{reason=\"missing\"\\} [1-9]", metrics);
        Assert.Matches("portcullis_tls_refused_client_certificates_total\\{reason=\"untrusted\"\\} [1-9]", metrics);
        Assert.Contains("portcullis_webhook_reviews_total{review=\"SubjectAccessReview\",decision=\"allowed\"} 1", metrics, StringComparison.Ordinal);
        var reloadsBefore = Reloads(metrics);

        // The documented edit: one line appended to the deny list. The running process reloads it; the same review is denied.
        File.AppendAllText(Path.Combine(_dir, "deny.yaml"), "- {user: alice, reason: laptop stolen}\n");
        var deadline = Stopwatch.StartNew();
        (bool Allowed, bool Denied) answer;
        while ((answer = await SarAsync(apiServer)) != (false, true))
        {
            Assert.True(deadline.Elapsed < Timeout, $"alice was still {answer} {deadline.Elapsed} after the deny-list edit\n{webhook.Output}");
            await Task.Delay(100); // polling a condition with a deadline
        }
        Assert.True(Reloads(await admin.GetStringAsync("/metrics").WaitAsync(Timeout)) > reloadsBefore, "portcullis_config_reloads_total did not grow");
        Assert.Contains("Configuration reloaded from", webhook.Output, StringComparison.Ordinal);

        // SIGTERM: a clean stop, exit 0, well within the time a service manager waits.
        var stopping = Stopwatch.StartNew();
        var exit = await webhook.SignalAndWaitAsync("TERM");
        Assert.True(exit == 0, $"exit {exit}\n{webhook.Output}");
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(20), $"took {stopping.Elapsed} to stop");
        Assert.DoesNotContain("   at ", webhook.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("token-jane", webhook.Output, StringComparison.Ordinal);
        using (var tcp = new TcpClient())
        {
            await Assert.ThrowsAsync<SocketException>(() => tcp.ConnectAsync(IPAddress.Loopback, webhook.Webhook.Port).WaitAsync(Timeout));
        }

        // Every review was audited (the audit log the documented configuration names), the token never.
        var audit = File.ReadAllText(Path.Combine(_dir, "webhook-audit.log"));
        Assert.Contains("\"portcullis.dev/webhook-decision\":\"authenticated\"", audit, StringComparison.Ordinal);
        Assert.Contains("\"portcullis.dev/webhook-decision\":\"denied\"", audit, StringComparison.Ordinal);
        Assert.DoesNotContain("token-jane", audit, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("upstream", "upstream: {kubeconfig: upstream.kubeconfig}\n", "upstream: is not used by portcullis webhook")]
    [InlineData("misspelt", null, "authentication.tokenAuthFlie: unknown field \"tokenAuthFlie\"")]
    public async Task A_refused_configuration_exits_2_with_file_line_on_stderr_and_no_stack_trace(string name, string? appended, string expected)
    {
        WriteFiles(config => appended is null
            ? config.Replace("tokenAuthFile: tokens.csv", "tokenAuthFlie: tokens.csv", StringComparison.Ordinal)
            : config + appended);
        var text = File.ReadAllLines(ConfigPath);
        var key = appended is null ? "tokenAuthFlie:" : "upstream:";
        var line = 1 + Array.FindIndex(text, l => l.TrimStart().StartsWith(key, StringComparison.Ordinal));
        Assert.True(line > 0, name);

        var result = await PortcullisCli.RunAsync([.. DocumentedArguments().Select(a => a == "webhook.yaml" ? ConfigPath : a)]);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains($"{ConfigPath}:{line.ToString(CultureInfo.InvariantCulture)}: {expected}", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("listening", result.Stdout, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_listener_address_in_use_exits_1_naming_it_with_no_stack_trace()
    {
        WriteFiles();
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var address = $"127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture)}";

        var result = await PortcullisCli.RunAsync("webhook", "--config", ConfigPath, "--listen", address, "--admin", "127.0.0.1:0");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains($"portcullis: cannot listen on {address}", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr + result.Stdout, StringComparison.Ordinal);
    }

    private static double Reloads(string metrics) =>
        ReloadsRegex().Match(metrics) is { Success: true } m ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex("^portcullis_config_reloads_total ([0-9.e+]+)$", RegexOptions.Multiline)]
    private static partial Regex ReloadsRegex();

    private static async Task<(bool Allowed, bool Denied)> SarAsync(HttpClient apiServer)
    {
        var (version, code, body) = await PostAsync(apiServer, "/authorize", AliceCreatesPersistentVolumes);
        Assert.Equal(HttpVersion.Version20, version);
        Assert.True(code == HttpStatusCode.OK, body);
        using var review = JsonDocument.Parse(body);
        var status = review.RootElement.GetProperty("status");
        return (status.GetProperty("allowed").GetBoolean(), status.TryGetProperty("denied", out var denied) && denied.GetBoolean());
    }

    /// <summary>An HTTP/2-only client that trusts the webhook's serving CA and presents <paramref name="clientCertificate"/>.</summary>
    private HttpClient Client(Uri webhook, X509Certificate2? clientCertificate)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is X509Certificate2 c && c.Issuer == _serving.Certificate.Subject,
                ClientCertificates = clientCertificate is null ? null : [clientCertificate],
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
            },
        };
        return new HttpClient(handler, disposeHandler: true)
        {
            BaseAddress = webhook,
            Timeout = Timeout,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    private static async Task<(Version Version, HttpStatusCode Code, string Body)> PostAsync(HttpClient client, string path, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await client.PostAsync(path, content).WaitAsync(Timeout);
        return (response.Version, response.StatusCode, await response.Content.ReadAsStringAsync().WaitAsync(Timeout));
    }

    public void Dispose()
    {
        _serving.Dispose();
        _apiServerClients.Dispose();
        _intruders.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>
    /// The CLI (<see cref="PortcullisCli.Start"/>) running <c>portcullis webhook</c> in the configuration's folder, ready
    /// once it has logged both bound addresses; disposing kills it, by its own handle, if it is still running.
    /// </summary>
    private sealed partial class WebhookProcess : IAsyncDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly Lock _lock = new();
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Process _process;

        private WebhookProcess(Process process, string[] arguments)
        {
            _process = process;
            Arguments = arguments;
        }

        public string[] Arguments { get; }
        public Uri Webhook { get; private set; } = null!;
        public Uri Admin { get; private set; } = null!;

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

        public static async Task<WebhookProcess> StartAsync(string[] arguments, string directory)
        {
            // The documented command runs in the configuration's folder (--config webhook.yaml is relative).
            var process = PortcullisCli.StartIn(directory, arguments);
            var webhook = new WebhookProcess(process, arguments);
            process.EnableRaisingEvents = true;
            process.OutputDataReceived += (_, e) => webhook.OnLine(e.Data);
            process.ErrorDataReceived += (_, e) => webhook.OnLine(e.Data);
            process.Exited += (_, _) => webhook._ready.TrySetException(new InvalidOperationException("portcullis webhook exited before it was ready"));
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await webhook._ready.Task.WaitAsync(StartTimeout);
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
            {
                await webhook.DisposeAsync();
                throw new InvalidOperationException($"portcullis webhook was not ready within {StartTimeout}: {ex.Message}\n{webhook.Output}", ex);
            }
            return webhook;
        }

        private void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }
            lock (_lock)
            {
                _output.AppendLine(line);
                if (WebhookLine().Match(line) is { Success: true } w)
                {
                    Webhook = new Uri(w.Groups[1].Value);
                }
                if (AdminLine().Match(line) is { Success: true } a)
                {
                    Admin = new Uri(a.Groups[1].Value);
                }
                if (Webhook is not null && Admin is not null)
                {
                    _ready.TrySetResult();
                }
            }
        }

        [GeneratedRegex("Webhook listening on (https://127\\.0\\.0\\.1:[0-9]+)")]
        private static partial Regex WebhookLine();

        [GeneratedRegex("Admin endpoints on (http://127\\.0\\.0\\.1:[0-9]+)")]
        private static partial Regex AdminLine();

        /// <summary>Sends a signal with kill(1) and waits for the exit code.</summary>
        public async Task<int> SignalAndWaitAsync(string signal)
        {
            using (var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync().WaitAsync(Timeout);
                Assert.Equal(0, kill.ExitCode);
            }
            await _process.WaitForExitAsync().WaitAsync(Timeout);
            return _process.ExitCode;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(Timeout);
            }
            _process.Dispose();
        }
    }
}
