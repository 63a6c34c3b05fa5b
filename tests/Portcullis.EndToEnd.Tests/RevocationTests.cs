using System.Diagnostics;
using k8s;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// Revocation with the real kubectl through a demo of its own (the shared demo's jane must stay valid): revoking a
/// certificate with <c>portcullis revoke</c> closes its owner's open <c>kubectl get pods -w</c> at the reload, while another
/// user's watch stays open, and the next handshake is refused.
/// </summary>
public sealed class RevocationTests
{
    private static readonly TimeSpan StreamTimeout = TimeSpan.FromSeconds(30);

    [KubectlFact]
    public async Task Revoking_A_Certificate_Closes_Its_Open_Watch_While_Another_Users_Watch_Stays_Open()
    {
        await using var demo = await DemoProcess.StartAsync();
        using var jane = new Kubectl(demo.Kubeconfig("jane"));
        using var admin = new Kubectl(demo.Kubeconfig("admin"));
        using var janeWatch = jane.StartStreaming("get", "pods", "-n", "dev", "-w");
        using var adminWatch = admin.StartStreaming("get", "pods", "-n", "dev", "-w");
        await janeWatch.ReadUntilAsync(line => line.StartsWith("web-1", StringComparison.Ordinal), StreamTimeout);
        await adminWatch.ReadUntilAsync(line => line.StartsWith("web-1", StringComparison.Ordinal), StreamTimeout);

        var revoke = await PortcullisCli.RunAsync("revoke", "--cert", demo.Pki("jane.crt"), "--reason", "laptop stolen",
            "--config", Path.Combine(demo.Directory, "portcullis.yaml"));
        var written = Stopwatch.StartNew();
        Assert.True(revoke.ExitCode == 0, revoke.ToString());

        // The gateway closes the connection jane's watch runs on at the reload, and says so in its log. Design target 1 s
        // (250 ms poll + 300 ms quiet period + the reload); the bound is generous for a loaded machine.
        while (!demo.Output.Contains("Closed 1 open connection(s) of newly revoked client certificates (first: O=developers, CN=jane", StringComparison.Ordinal))
        {
            Assert.True(written.Elapsed < TimeSpan.FromSeconds(5), $"jane's connection was not closed within 5 s of the revocation:\n{demo.Output}");
            await Task.Delay(50); // poll interval under a deadline
        }
        // kubectl (client-go) then retries the broken watch, 1 s apart, ten times; each attempt is refused at the
        // handshake, and it gives up: its output ends.
        await janeWatch.Stdout.ReadToEndAsync().WaitAsync(StreamTimeout);

        using var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(demo.Kubeconfig("admin")));
        var name = $"e2e-after-revoke-{Guid.NewGuid():N}"[..30];
        await client.CoreV1.CreateNamespacedPodAsync(KubectlTests.NewPod(name), "dev").WaitAsync(StreamTimeout);
        var seen = await adminWatch.ReadUntilAsync(line => line.StartsWith(name, StringComparison.Ordinal), StreamTimeout);
        Assert.Contains(name, seen, StringComparison.Ordinal);

        var again = await jane.RunAsync("get", "--raw", "/api/v1/namespaces/dev/pods");
        Assert.NotEqual(0, again.ExitCode);
        Assert.DoesNotContain("Error from server", again.Stderr, StringComparison.Ordinal);
        Assert.Contains("Unable to connect to the server", again.Stderr, StringComparison.Ordinal);
    }
}
