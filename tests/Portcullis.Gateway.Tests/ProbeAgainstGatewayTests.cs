using System.Security.Cryptography.X509Certificates;
using Portcullis.Check;
using Portcullis.Check.Probe;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>Issue 7: <c>portcullis probe</c> against the real gateway, secure and deliberately insecure.</summary>
public sealed class ProbeAgainstGatewayTests
{
    private static Task<CheckReport> ProbeAsync(GatewayTestHost gw) =>
        EndpointProbe.RunAsync(new ProbeOptions(gw.Uri, new X509Certificate2Collection(gw.Pki.Certificate), TimeSpan.FromSeconds(10)))
            .WaitAsync(TimeSpan.FromSeconds(120));

    [Fact]
    public async Task Secure_gateway_shows_no_failure_to_an_outsider()
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]");

        var report = await ProbeAsync(gw);

        Assert.Null(report.InputError);
        Assert.DoesNotContain(report.Findings, f => f.Status == CheckStatus.Fail);
        Assert.Equal(0, report.ExitCode);
    }

    [Fact]
    public async Task Gateway_with_anonymous_and_AlwaysAllow_is_reported()
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[AlwaysAllow]", anonymous: "{enabled: true}");

        var report = await ProbeAsync(gw);

        Assert.Contains(report.Findings, f => f.Status == CheckStatus.Fail && f.Evidence.Contains("/api/v1/namespaces", StringComparison.Ordinal));
        Assert.Equal(1, report.ExitCode);
    }
}
