using System.Net;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 14, item 1: a reload that changes what only a restart can apply (listeners, admin address, log format) is reported as such, in the log and in <c>portcullis_config_restart_required{field}</c>, and the running
/// gateway keeps serving.
/// </summary>
public sealed class ReloadRestartTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static async Task<string> MetricsAsync(GatewayTestHost gw)
    {
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        return await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_changed_listener_is_reported_as_needing_a_restart_and_the_gateway_keeps_serving()
    {
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        gw.WriteConfig("listeners:\n- address: 127.0.0.1:16443");
        Assert.Empty(gw.Host.Reload());

        var metrics = await MetricsAsync(gw);
        Assert.Contains("portcullis_config_restart_required{field=\"listeners\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_config_restart_required{field=\"admin.address\"} 0", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("field=\"audit.log\"", metrics, StringComparison.Ordinal); // a reload applies the audit backends (AuditBackendReloadTests)
        using (var response = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode); // still on the address it started with
        }

        gw.WriteConfig();
        Assert.Empty(gw.Host.Reload());
        Assert.Contains("portcullis_config_restart_required{field=\"listeners\"} 0", await MetricsAsync(gw), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fields_a_reload_applies_are_not_reported()
    {
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);

        gw.WriteConfig("network:\n  deny: [192.0.2.0/24]");
        Assert.Empty(gw.Host.Reload());

        var metrics = await MetricsAsync(gw);
        Assert.DoesNotContain("portcullis_config_restart_required{field=\"listeners\"} 1", metrics, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"portcullis_config_restart_required\{[^}]*\} 1", metrics);
    }
}
