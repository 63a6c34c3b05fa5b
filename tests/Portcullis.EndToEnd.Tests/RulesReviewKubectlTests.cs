using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// <c>kubectl auth can-i --list</c> through the demo's gateway, with the demo's own kubeconfigs and RBAC: the gateway
/// answers the SelfSubjectRulesReview itself (the sandbox behind it has no such API), so what kubectl prints is the
/// gateway's view of the user's rights.
/// </summary>
[Collection(DemoCollection.Name)]
public sealed class RulesReviewKubectlTests(DemoFixture fixture)
{
    private DemoProcess Demo => fixture.Demo;

    private static string[] Lines(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [KubectlFact]
    public async Task Jane_sees_her_rights_in_dev_as_the_gateway_grants_them()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("jane"));

        var dev = await kubectl.RunAsync("auth", "can-i", "--list", "-n", "dev");
        var prod = await kubectl.RunAsync("auth", "can-i", "--list", "-n", "prod");

        Assert.True(dev.ExitCode == 0, dev.ToString());
        var lines = Lines(dev.Stdout);
        Assert.StartsWith("Resources", lines[0], StringComparison.Ordinal);
        // the demo's Role developer in dev (rbac/10-developers.yaml) ...
        foreach (var resource in new[] { "pods", "pods/log", "pods/exec", "configmaps" })
        {
            Assert.Contains(lines, l => l.StartsWith(resource + " ", StringComparison.Ordinal) && l.EndsWith("[get list watch create update patch delete]", StringComparison.Ordinal));
        }
        // ... and the bootstrap roles every authenticated user has
        Assert.Contains(lines, l => l.StartsWith("selfsubjectrulesreviews.authorization.k8s.io ", StringComparison.Ordinal) && l.EndsWith("[create]", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith("secrets", StringComparison.Ordinal) || l.StartsWith("*.*", StringComparison.Ordinal));
        Assert.True(prod.ExitCode == 0, prod.ToString());
        Assert.DoesNotContain(Lines(prod.Stdout), l => l.StartsWith("pods", StringComparison.Ordinal) || l.StartsWith("configmaps", StringComparison.Ordinal));
    }

    [KubectlFact]
    public async Task Admin_sees_everything_and_impersonating_jane_sees_janes_rights()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("admin"));

        var own = await kubectl.RunAsync("auth", "can-i", "--list", "-n", "dev");
        var asJane = await kubectl.RunAsync("--as=jane", "--as-group=developers", "auth", "can-i", "--list", "-n", "dev");
        var asJaneWithoutGroup = await kubectl.RunAsync("--as=jane", "auth", "can-i", "--list", "-n", "dev");

        Assert.True(own.ExitCode == 0, own.ToString());
        Assert.Contains(Lines(own.Stdout), l => l.StartsWith("*.* ", StringComparison.Ordinal) && l.EndsWith("[*]", StringComparison.Ordinal));
        Assert.True(asJane.ExitCode == 0, asJane.ToString());
        Assert.Contains(Lines(asJane.Stdout), l => l.StartsWith("pods/exec ", StringComparison.Ordinal));
        Assert.DoesNotContain(Lines(asJane.Stdout), l => l.StartsWith("*.*", StringComparison.Ordinal));
        // impersonating the user alone gives only its name and system:authenticated: the developers rights come from the group
        Assert.True(asJaneWithoutGroup.ExitCode == 0, asJaneWithoutGroup.ToString());
        Assert.DoesNotContain(Lines(asJaneWithoutGroup.Stdout), l => l.StartsWith("pods", StringComparison.Ordinal));
    }
}
