using System.Net;
using System.Text.Json;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 14: the audit backends live in the snapshot. Changing the log path or mode, or switching to a webhook, is applied
/// by a reload without a restart; the requests begun before it are written by the old backends, the ones after by the
/// new, and no event is lost or written twice.
/// </summary>
public sealed class AuditBackendReloadTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private const string Policy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Metadata
        """;

    internal static string AuditYaml(string backend) => $"audit:\n  policyFile: audit-policy.yaml\n{backend}";

    internal static Task<GatewayTestHost> StartAsync(string backend) =>
        GatewayTestHost.StartAsync(AuditYaml(backend), files: new() { ["audit-policy.yaml"] = Policy });

    /// <summary>Sends <paramref name="count"/> requests with Audit-IDs <c>{prefix}-0</c>…; every one must be answered 200.</summary>
    internal static async Task<string[]> SendAsync(HttpClient client, string prefix, int count)
    {
        var ids = Enumerable.Range(0, count).Select(i => $"{prefix}-{i}").ToArray();
        foreach (var id in ids)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods");
            request.Headers.Add("Audit-ID", id);
            using var response = await client.SendAsync(request).WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        return ids;
    }

    internal static List<string> LogIds(string path) => File.Exists(path)
        ? [.. File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("auditID").GetString()!)]
        : [];

    private static async Task<string> MetricsAsync(GatewayTestHost gw)
    {
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        return await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
    }

    /// <summary>A watch that began before the reload and ends after it: its events belong to the backends it began on.</summary>
    internal static async Task<(string AuditId, Func<Task> Finish)> OpenWatchAsync(GatewayTestHost gw, HttpClient client)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods?watch=true");
        request.Headers.Add("Audit-ID", "watch-before-reload");
        var watch = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        var reader = new StreamReader(await watch.Content.ReadAsStreamAsync());
        Assert.NotNull(await reader.ReadLineAsync().WaitAsync(Timeout));
        return ("watch-before-reload", async () =>
        {
            gw.Upstream.SecondWatchEvent.SetResult();
            Assert.NotNull(await reader.ReadLineAsync().WaitAsync(Timeout));
            Assert.Null(await reader.ReadLineAsync().WaitAsync(Timeout));
            reader.Dispose();
            watch.Dispose();
            request.Dispose();
        });
    }

    [Theory]
    [InlineData("blocking", "blocking")]
    [InlineData("batch", "blocking")]
    [InlineData("blocking", "batch")]
    public async Task A_reload_moves_the_audit_log_to_a_new_path_and_loses_no_event(string modeA, string modeB)
    {
        await using var gw = await StartAsync($"  log:\n    path: audit-a.log\n    mode: {modeA}\n").WaitAsync(Timeout);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var before = await SendAsync(jane, "a", 10);
        var (watchId, finishWatch) = await OpenWatchAsync(gw, jane);

        gw.WriteConfig(AuditYaml($"  log:\n    path: audit-b.log\n    mode: {modeB}\n"));
        Assert.Empty(gw.Host.Reload());
        var after = await SendAsync(jane, "b", 10);
        await finishWatch();
        var metrics = await MetricsAsync(gw);
        await gw.Host.StopAsync().WaitAsync(Timeout);

        var a = LogIds(Path.Combine(gw.Dir, "audit-a.log"));
        var b = LogIds(Path.Combine(gw.Dir, "audit-b.log"));
        Assert.Equal([.. before, watchId, watchId], a.Order(StringComparer.Ordinal)); // ResponseStarted and ResponseComplete
        Assert.Equal(after, b.Order(StringComparer.Ordinal));
        Assert.DoesNotMatch(@"portcullis_config_restart_required\{[^}]*\} 1", metrics);
        Assert.DoesNotContain("field=\"audit", metrics, StringComparison.Ordinal);
        Assert.Matches(@"portcullis_config_reloads_total [1-9]", metrics); // (the file watcher may have reloaded it too)
    }

    [Fact]
    public async Task A_reload_that_keeps_the_backends_keeps_writing_one_log_and_applies_the_new_policy()
    {
        await using var gw = await StartAsync("  log:\n    path: audit.log\n    mode: batch\n").WaitAsync(Timeout);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var before = await SendAsync(jane, "a", 5);

        // Same backend, new policy: nothing about pods is audited any more.
        File.WriteAllText(Path.Combine(gw.Dir, "audit-policy.yaml"), Policy.Replace("- level: Metadata", "- level: None\n  resources: [{group: \"\", resources: [pods]}]\n- level: Metadata", StringComparison.Ordinal));
        Assert.Empty(gw.Host.Reload());
        await SendAsync(jane, "b", 5);
        await gw.Host.StopAsync().WaitAsync(Timeout);

        Assert.Equal(before, LogIds(Path.Combine(gw.Dir, "audit.log")).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_reload_switches_from_the_log_to_a_webhook_and_loses_no_event()
    {
        await using var gw = await StartAsync("  log:\n    path: audit-a.log\n    mode: batch\n").WaitAsync(Timeout);
        await using var receiver = await RecordingUpstream.StartAsync(gw.Pki.IssueServer(), gw.Pki.Certificate).WaitAsync(Timeout);
        File.WriteAllText(Path.Combine(gw.Dir, "audit-webhook.kubeconfig"), $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: receiver
              cluster:
                server: {receiver.Uri}
                certificate-authority: ca.crt
            users:
            - name: gateway
              user:
                client-certificate: gateway.crt
                client-key: gateway.key
            contexts:
            - name: receiver
              context: {"{"}cluster: receiver, user: gateway{"}"}
            current-context: receiver
            """);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var before = await SendAsync(jane, "a", 10);
        var (watchId, finishWatch) = await OpenWatchAsync(gw, jane);

        gw.WriteConfig(AuditYaml("  webhook:\n    configFile: audit-webhook.kubeconfig\n    mode: batch\n"));
        Assert.Empty(gw.Host.Reload());
        var after = await SendAsync(jane, "b", 10);
        await finishWatch();
        var metrics = await MetricsAsync(gw);
        await gw.Host.StopAsync().WaitAsync(Timeout);

        var webhook = receiver.Requests.Where(r => r.Method == "POST")
            .SelectMany(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("items").EnumerateArray())
            .Select(e => e.GetProperty("auditID").GetString()!)
            .ToList();
        Assert.Equal([.. before, watchId, watchId], LogIds(Path.Combine(gw.Dir, "audit-a.log")).Order(StringComparer.Ordinal));
        Assert.Equal(after, webhook.Order(StringComparer.Ordinal));
        Assert.DoesNotMatch(@"portcullis_config_restart_required\{[^}]*\} 1", metrics);
    }
}
