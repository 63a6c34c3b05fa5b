using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>One <c>portcullis demo --mode webhook</c> shared by the read-only tests of <see cref="WebhookDemoTests"/>.</summary>
public sealed class WebhookDemoFixture : IAsyncLifetime
{
    private DemoProcess? _demo;

    public DemoProcess Demo => _demo ?? throw new InvalidOperationException("the demo has not started");

    public async Task InitializeAsync() => _demo = await DemoProcess.StartWebhookModeAsync();

    public async Task DisposeAsync()
    {
        if (_demo is not null)
        {
            await _demo.DisposeAsync();
        }
    }
}

/// <summary>
/// <c>portcullis demo --mode webhook</c> with the real kubectl: the sandbox is the API server, Portcullis its TokenReview
/// and SubjectAccessReview webhook, and the API server's RBAC decides what Portcullis has no opinion on. Each test reads
/// (never changes) the shared demo; the deny-list edit and the lifecycle run demos of their own.
/// </summary>
public sealed class WebhookDemoTests(WebhookDemoFixture fixture) : IClassFixture<WebhookDemoFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    /// <summary>1 s for the reload + the demo's authorizedTTL (2 s), times a generous factor for a loaded machine.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds((1 + 2) * 4);
    private const string ReviewedUser = "portcullis.dev/reviewed-user";
    private const string Decision = "portcullis.dev/webhook-decision";

    private DemoProcess Demo => fixture.Demo;

    [KubectlFact]
    public async Task A_Token_Is_Reviewed_By_Portcullis_And_Kubectl_Auth_Whoami_Prints_The_Token_File_User()
    {
        using var ciBot = new Kubectl(Demo.Kubeconfig("ci-bot"));

        var whoami = await ciBot.RunAsync("auth", "whoami");

        Assert.True(whoami.ExitCode == 0, whoami.ToString());
        Assert.Matches(@"Username\s+ci-bot\n", whoami.Stdout);
        Assert.Matches(@"UID\s+ci-bot-uid\n", whoami.Stdout);
        Assert.Matches(@"Groups\s+\[ci system:authenticated\]\n", whoami.Stdout);
        // It was Portcullis that recognised the token: its TokenReview counter moved, and the review is audited as ci-bot's.
        Assert.True(await MetricAsync(Demo.Admin, "TokenReview", "authenticated") >= 1, Demo.Output);
        await WaitForAuditAsync(Demo, (ReviewedUser, "ci-bot"), (Decision, "authenticated"));
    }

    [KubectlFact]
    public async Task Portcullis_Has_No_Opinion_And_The_Api_Servers_Rbac_Allows_Jane_And_Refuses_Her_Secrets()
    {
        using var jane = new Kubectl(Demo.Kubeconfig("jane"));

        var pods = await jane.RunAsync("get", "pods", "-n", "dev");
        var secrets = await jane.RunAsync("get", "secrets", "-n", "prod");

        Assert.True(pods.ExitCode == 0, pods.ToString());
        Assert.Contains("web-1", pods.Stdout, StringComparison.Ordinal);
        // Portcullis answered no opinion (its own RBAC folder is empty), so the allow is the sandbox's RBAC (rbac/10-developers.yaml).
        await WaitForAuditAsync(Demo, (ReviewedUser, "jane"), ("portcullis.dev/reviewed-request", "list pods namespace=dev"), (Decision, "no_opinion"));
        Assert.NotEqual(0, secrets.ExitCode);
        Assert.Contains("Error from server (Forbidden): secrets is forbidden: User \"jane\" cannot list resource \"secrets\" in API group \"\" in the namespace \"prod\"",
            secrets.Stderr, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task A_Deny_Listed_Developer_Is_Refused_Although_The_Api_Servers_Rbac_Would_Allow_Her()
    {
        using var mallory = new Kubectl(Demo.Kubeconfig("mallory"));

        var pods = await mallory.RunAsync("get", "--raw", "/api/v1/namespaces/dev/pods");

        Assert.NotEqual(0, pods.ExitCode);
        Assert.Contains("Error from server (Forbidden)", pods.Stderr, StringComparison.Ordinal);
        Assert.Contains("deny list: left the team (demo)", pods.Stderr, StringComparison.Ordinal);
        await WaitForAuditAsync(Demo, (ReviewedUser, "mallory"), (Decision, "denied"));
    }

    [Fact]
    public async Task The_Demos_Api_Server_Wiring_Is_What_Portcullis_Webhook_Kubeconfig_Writes()
    {
        var apiserver = Path.Combine(Demo.Directory, "apiserver");
        var generated = Directory.CreateTempSubdirectory("portcullis-e2e-wiring-").FullName;
        try
        {
            var result = await PortcullisCli.RunAsync("webhook", "kubeconfig", "--server", Demo.Webhook!.GetLeftPart(UriPartial.Authority),
                "--ca", Demo.Pki("ca.crt"), "--client-cert", Demo.Pki("apiserver-webhook-client.crt"), "--client-key", Demo.Pki("apiserver-webhook-client.key"),
                "--dir", apiserver, "--failure-policy", "Deny", "--authorized-ttl", "2s", "--unauthorized-ttl", "2s", "--token-cache-ttl", "2s", "--out", generated);

            Assert.True(result.ExitCode == 0, result.ToString());
            foreach (var name in new[] { "authentication-webhook.kubeconfig", "authorization-webhook.kubeconfig", "authorization-config.yaml", "kube-apiserver-flags.txt" })
            {
                Assert.Equal(File.ReadAllText(Path.Combine(generated, name)), File.ReadAllText(Path.Combine(apiserver, name)));
            }
        }
        finally
        {
            Directory.Delete(generated, recursive: true);
        }
    }

    [Fact]
    public async Task Check_Scores_The_Demos_Api_Server_Flags_And_Passes_The_Webhook_Order()
    {
        var flags = File.ReadAllLines(Path.Combine(Demo.Directory, "apiserver", "kube-apiserver-flags.txt")).Where(l => l.Length > 0);

        var result = await PortcullisCli.RunAsync("check", "--flags", "kube-apiserver " + string.Join(' ', flags));

        Assert.True(result.ExitCode is 0 or 1, result.ToString());
        Assert.Matches(@"\[PASS\] PC-L4-AUTHZ-WEBHOOK", result.Stdout);
        Assert.Matches(@"authorization-config\.yaml:\d+: webhook ""portcullis"" before RBAC with failurePolicy Deny, 5 matchCondition\(s\); authorizedTTL 2s, unauthorizedTTL 2s", result.Stdout);
    }

    [KubectlFact]
    public async Task A_Certificate_User_Added_To_The_Deny_List_Is_Forbidden_Within_A_Reload_And_The_Authorized_Ttl()
    {
        await using var demo = await DemoProcess.StartWebhookModeAsync();
        using var jane = new Kubectl(demo.Kubeconfig("jane"));
        var allowed = await jane.RunAsync("get", "--raw", "/api/v1/namespaces/dev/pods");
        Assert.True(allowed.ExitCode == 0, allowed.ToString()); // and the API server now holds that allow for authorizedTTL

        // The banner's line, run in bash as a user types it, from where the demo was started.
        var line = demo.Output.Split('\n').First(l => l.Contains(">> ", StringComparison.Ordinal) && l.Contains("deny.yaml", StringComparison.Ordinal));
        var command = line[..line.IndexOf("   #", StringComparison.Ordinal)].Trim();
        var edit = await ExternalTool.RunAsync(ExternalTool.Find("bash") ?? "/bin/bash", ["-c", $"cd '{demo.Directory}' && {command}"], timeout: Deadline);
        var written = Stopwatch.StartNew();
        Assert.True(edit.ExitCode == 0, edit.ToString());

        KubectlResult last;
        while (true)
        {
            last = await jane.RunAsync("get", "--raw", "/api/v1/namespaces/dev/pods");
            if (last.ExitCode != 0 && last.Stderr.Contains("Forbidden", StringComparison.Ordinal))
            {
                break;
            }
            Assert.True(written.Elapsed < Bound, $"jane was not refused within {Bound.TotalSeconds} s of the deny-list edit: {last}\n{demo.Output}");
        }
        var took = written.Elapsed;

        // Design target: reload (~0.3 s quiet period + the watcher's poll) + authorizedTTL (2 s) ≈ 1 s + 2 s; bounded
        // generously for a loaded machine — an order of magnitude, not a latency.
        Assert.True(took < Bound, $"took {took.TotalSeconds:F1} s");
        Assert.Contains("User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"dev\"", last.Stderr, StringComparison.Ordinal);
        Assert.Contains("deny list: demo", last.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_Port_Flag_The_Mode_Does_Not_Use_Is_Refused()
    {
        var dir = Directory.CreateTempSubdirectory("portcullis-e2e-demo-flags-").FullName;
        try
        {
            var sandboxPort = await PortcullisCli.RunAsync("demo", "--mode", "webhook", "--dir", dir, "--sandbox-port", "7443");
            var webhookPort = await PortcullisCli.RunAsync("demo", "--dir", dir, "--webhook-port", "8443");

            Assert.True(sandboxPort.ExitCode != 0, sandboxPort.ToString());
            Assert.Contains("--sandbox-port is not used with --mode webhook", sandboxPort.Stderr, StringComparison.Ordinal);
            Assert.True(webhookPort.ExitCode != 0, webhookPort.ToString());
            Assert.Contains("--webhook-port applies to --mode webhook only", webhookPort.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Sigint_Stops_The_Api_Server_And_The_Webhook_With_Exit_Code_0()
    {
        await using var demo = await DemoProcess.StartWebhookModeAsync();

        var exit = await demo.SignalAndWaitAsync("INT");

        Assert.True(exit == 0, demo.Output);
        Assert.Contains("portcullis demo: stopped", demo.Output, StringComparison.Ordinal);
        foreach (var port in new[] { demo.ApiServer!.Port, demo.Webhook!.Port, demo.Admin.Port })
        {
            using var tcp = new TcpClient();
            await Assert.ThrowsAsync<SocketException>(() => tcp.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }

    /// <summary>The value of <c>portcullis_webhook_reviews_total{review,decision}</c> on the webhook's admin listener (0 when absent).</summary>
    private static async Task<double> MetricAsync(Uri admin, string review, string decision)
    {
        using var http = new HttpClient { Timeout = Deadline };
        var text = await http.GetStringAsync(new Uri(admin, "/metrics")).WaitAsync(Deadline);
        var match = Regex.Match(text, $"^portcullis_webhook_reviews_total\\{{review=\"{review}\",decision=\"{decision}\"\\}} (\\S+)$", RegexOptions.Multiline, TimeSpan.FromSeconds(1));
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>
    /// Waits until one event of the webhook's audit log has every annotation in <paramref name="annotations"/> (the log is
    /// written asynchronously).
    /// </summary>
    private static async Task WaitForAuditAsync(DemoProcess demo, params (string Key, string Value)[] annotations)
    {
        var path = Path.Combine(demo.Directory, "webhook-audit.log");
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (File.Exists(path))
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                var lines = (await reader.ReadToEndAsync().WaitAsync(Deadline)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
                if (lines.Any(line => HasAnnotations(line, annotations)))
                {
                    return;
                }
            }
            Assert.True(deadline.Elapsed < Deadline, $"no audit event in {path} with {string.Join(", ", annotations)}");
            await Task.Delay(100); // poll interval under a deadline
        }
    }

    private static bool HasAnnotations(string line, (string Key, string Value)[] annotations)
    {
        try
        {
            using var json = JsonDocument.Parse(line);
            return json.RootElement.TryGetProperty("annotations", out var found)
                && annotations.All(a => found.TryGetProperty(a.Key, out var value) && value.GetString() == a.Value);
        }
        catch (JsonException)
        {
            return false; // a line still being written
        }
    }
}
