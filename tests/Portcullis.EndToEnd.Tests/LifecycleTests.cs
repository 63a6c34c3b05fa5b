using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>Starting and stopping the demo as a user does: its own process, its own folder, signals.</summary>
public sealed class LifecycleTests
{
    [Fact]
    public async Task Sigint_Stops_The_Demo_With_Exit_Code_0_And_Leaves_No_Process_Behind()
    {
        await using var demo = await DemoProcess.StartAsync();
        var pid = demo.Process.Id;
        var tree = Descendants(pid);

        var exit = await demo.SignalAndWaitAsync("INT");

        Assert.True(exit == 0, demo.Output);
        Assert.Contains("portcullis demo: stopped", demo.Output, StringComparison.Ordinal);
        Assert.False(Directory.Exists($"/proc/{pid}"), $"process {pid} is still there");
        Assert.All(tree, child => Assert.False(Directory.Exists($"/proc/{child}"), $"child process {child} outlived the demo"));
        await AssertClosedAsync(demo.Gateway.Port);
        await AssertClosedAsync(demo.Admin.Port);
    }

    [Fact]
    public async Task A_Second_Run_Reuses_The_Folder_And_Sigterm_Exits_0()
    {
        var directory = Directory.CreateTempSubdirectory("portcullis-e2e-reuse-").FullName;
        try
        {
            string[] kept = ["pki/ca.key", "pki/ca.crt", "pki/jane.key", "pki/upstream-ca.key", "tokens.csv", "portcullis.yaml"];
            Dictionary<string, string> first;
            await using (var demo = await DemoProcess.StartAsync(directory))
            {
                Assert.Contains("created", demo.Output, StringComparison.Ordinal);
                first = kept.ToDictionary(f => f, f => Hash(Path.Combine(directory, f)));
                Assert.True(await demo.SignalAndWaitAsync("TERM") == 0, demo.Output);
            }
            foreach (var file in new[] { "admin.kubeconfig", "jane.kubeconfig", "intruder.kubeconfig", "thief.kubeconfig", "revoked.yaml", "ci-bot.kubeconfig", "upstream.kubeconfig",
                         "audit-policy.yaml", "rbac/00-bootstrap.yaml", "rbac/10-developers.yaml", "rbac/20-ci-bot.yaml", "pki/gateway.crt", "pki/sandbox.crt" })
            {
                Assert.True(File.Exists(Path.Combine(directory, file)), file + " was not written");
            }
            var token = File.ReadAllText(Path.Combine(directory, "tokens.csv")).Split(',')[0];
            Assert.Equal(0, await ValidateAsync(Path.Combine(directory, "portcullis.yaml")));

            await using (var again = await DemoProcess.StartAsync(directory))
            {
                Assert.Contains("(reused it;", again.Output, StringComparison.Ordinal);
                Assert.DoesNotContain(token, again.Output, StringComparison.Ordinal);
                Assert.Equal(first, kept.ToDictionary(f => f, f => Hash(Path.Combine(directory, f))));
                Assert.True(await again.SignalAndWaitAsync("TERM") == 0, again.Output);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Runs <c>portcullis validate</c> on the written configuration: the same validators as serve.</summary>
    private static async Task<int> ValidateAsync(string config)
    {
        var result = await PortcullisCli.RunAsync("validate", "--config", config);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.ExitCode;
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private static async Task AssertClosedAsync(int port)
    {
        using var tcp = new TcpClient();
        await Assert.ThrowsAsync<SocketException>(() => tcp.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>Every process below <paramref name="root"/>, from /proc.</summary>
    private static List<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // the process ended while we looked
            }
        }
        var found = new List<int>();
        var queue = new Queue<int>([root]);
        while (queue.Count > 0)
        {
            var parent = queue.Dequeue();
            foreach (var (pid, ppid) in parents)
            {
                if (ppid == parent)
                {
                    found.Add(pid);
                    queue.Enqueue(pid);
                }
            }
        }
        return found;
    }
}
