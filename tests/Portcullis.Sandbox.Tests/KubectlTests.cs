using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Tests;

/// <summary>The real kubectl against the sandbox: the commands the gateway's demo and end-to-end tests rely on.</summary>
public sealed class KubectlTests
{
    [KubectlFact]
    public async Task Get_Pods_Lists_The_Seeded_Pods()
    {
        await using var server = await TestSandbox.StartAsync();
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));

        var (exit, stdout, stderr) = await kubectl.RunAsync("get", "pods", "-n", "dev");

        Assert.True(exit == 0, stderr);
        Assert.Contains("web-1", stdout, StringComparison.Ordinal);
        Assert.Contains("web-2", stdout, StringComparison.Ordinal);
        Assert.Contains("db-0", stdout, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Create_Get_And_Delete_A_ConfigMap()
    {
        await using var server = await TestSandbox.StartAsync();
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));

        var created = await kubectl.RunAsync("create", "configmap", "from-kubectl", "--from-literal=color=blue");
        var fetched = await kubectl.RunAsync("get", "configmap", "from-kubectl", "-o", "json");
        var deleted = await kubectl.RunAsync("delete", "configmap", "from-kubectl");
        var gone = await kubectl.RunAsync("get", "configmap", "from-kubectl");

        Assert.True(created.ExitCode == 0, created.Stderr);
        Assert.True(fetched.ExitCode == 0, fetched.Stderr);
        var configMap = JsonNode.Parse(fetched.Stdout)!;
        Assert.Equal("blue", configMap["data"]!["color"]!.GetValue<string>());
        Assert.Equal("alice", configMap["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]!.GetValue<string>());
        Assert.True(deleted.ExitCode == 0, deleted.Stderr);
        Assert.Contains("deleted", deleted.Stdout, StringComparison.Ordinal);
        Assert.NotEqual(0, gone.ExitCode);
        Assert.Contains("configmaps \"from-kubectl\" not found", gone.Stderr, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Exec_Echoes_Over_WebSocket()
    {
        await using var server = await TestSandbox.StartAsync();
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));

        var (exit, stdout, stderr) = await kubectl.RunAsync("exec", "web-1", "--", "echo", "hi");

        Assert.True(exit == 0, stderr);
        Assert.Equal("hi\n", stdout);
        Assert.Contains(server.Requests.Recent(100), r => r.Path.Contains("/pods/web-1/exec", StringComparison.Ordinal)
            && r.Headers.TryGetValue("Upgrade", out var upgrade) && upgrade.Contains("websocket", StringComparer.OrdinalIgnoreCase));
    }

    [KubectlFact]
    public async Task Exec_Echoes_Over_Spdy_When_WebSockets_Are_Off()
    {
        await using var server = await TestSandbox.StartAsync();
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));
        var spdy = new Dictionary<string, string> { ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS"] = "false" };

        var echo = await kubectl.RunWithAsync(null, spdy, "exec", "web-1", "--", "echo", "hi");
        var cat = await kubectl.RunWithAsync("from stdin\n", spdy, "exec", "-i", "web-1", "--", "cat");
        var exit = await kubectl.RunWithAsync(null, spdy, "exec", "web-1", "--", "exit", "4");

        Assert.True(echo.ExitCode == 0, echo.Stderr);
        Assert.Equal("hi\n", echo.Stdout);
        Assert.True(cat.ExitCode == 0, cat.Stderr);
        Assert.Equal("from stdin\n", cat.Stdout);
        Assert.Equal(4, exit.ExitCode);
        Assert.Contains(server.Requests.Recent(100), r => r.Path.Contains("/pods/web-1/exec", StringComparison.Ordinal)
            && r.Headers.TryGetValue("Upgrade", out var upgrade) && upgrade.Contains("SPDY/3.1", StringComparer.OrdinalIgnoreCase));
    }

    [KubectlFact]
    public async Task Attach_Echoes_Stdin_Over_WebSocket()
    {
        await using var server = await TestSandbox.StartAsync();
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));

        var (exit, stdout, stderr) = await kubectl.RunWithAsync("attached\n", null, "attach", "-i", "db-0");

        Assert.True(exit == 0, stderr);
        Assert.Contains("attached", stdout, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Exec_Reports_A_NonZero_Exit_Code()
    {
        await using var server = await TestSandbox.StartAsync();
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));

        var (exit, _, stderr) = await kubectl.RunAsync("exec", "web-1", "--", "exit", "7");

        Assert.Equal(7, exit);
        Assert.Contains("exit code 7", stderr, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Logs_Prints_The_Container_Lines()
    {
        await using var server = await TestSandbox.StartAsync();
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));

        var (exit, stdout, stderr) = await kubectl.RunAsync("logs", "web-1");

        Assert.True(exit == 0, stderr);
        Assert.Contains("pod dev/web-1", stdout, StringComparison.Ordinal);
        Assert.EndsWith("ready\n", stdout, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Logs_Follow_Streams_New_Lines()
    {
        await using var server = await TestSandbox.StartAsync(logFollowInterval: TimeSpan.FromMilliseconds(100));
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));
        using var timeout = new CancellationTokenSource(Kubectl.CommandTimeout);

        using var logs = kubectl.StartStreaming("logs", "-f", "web-1");
        var output = await logs.ReadUntilAsync(line => line == "heartbeat 3", timeout.Token);

        Assert.Contains("ready", output, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Get_Watch_Sees_A_Pod_Created_By_Another_Client()
    {
        await using var server = await TestSandbox.StartAsync();
        using var kubectl = new Kubectl(home => SandboxPki.WriteKubeconfig(home, server));
        using var timeout = new CancellationTokenSource(Kubectl.CommandTimeout);

        using var watch = kubectl.StartStreaming("get", "pods", "-n", "prod", "-w");
        await watch.ReadUntilAsync(line => line.StartsWith("web-1", StringComparison.Ordinal), timeout.Token);
        // kubectl watches from the list's resourceVersion, so a pod created now reaches it however late the watch starts.
        server.AddPod("prod", "late-arrival");
        var output = await watch.ReadUntilAsync(line => line.StartsWith("late-arrival", StringComparison.Ordinal), timeout.Token);

        Assert.Contains("late-arrival", output, StringComparison.Ordinal);
    }
}
