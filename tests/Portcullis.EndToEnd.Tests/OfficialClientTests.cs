using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// The official Kubernetes clients a user would reach for, through the gateway to the sandbox with the demo's
/// kubeconfigs: Debian's python3-kubernetes (whose models refuse an object without a required field) and npm's
/// @kubernetes/client-node (whose models' required fields the script checks). Each runs as its own process
/// (tests/clients/python/client.py, tests/clients/node/client.mjs) and a failure shows the client's own error text.
/// A missing client fails with the install step; it is never skipped.
/// </summary>
[Collection(DemoCollection.Name)]
public sealed class OfficialClientTests(DemoFixture fixture)
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    public static readonly TheoryData<string> Clients = new() { "python", "node" };

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Jane_Lists_Pods_And_ConfigMaps_In_Dev(string client)
    {
        var output = await RunAsync(client, "jane", "list", "dev");

        // containerStatuses[].imageID was null: python3-kubernetes raised "Invalid value for `image_id`, must not be `None`".
        Assert.Contains("pod web-1 container main image docker.io/sandbox/echo:latest imageID docker.io/sandbox/echo@sha256:", output, StringComparison.Ordinal);
        Assert.Contains("configmaps app-config", output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Admin_Lists_Namespaces_Pods_Secrets_ServiceAccounts_Events_And_Reads_A_NotFound_Status(string client)
    {
        var name = Name(client, "ev");

        var output = await RunAsync(client, "admin", "cluster", "dev", name);

        Assert.Contains("namespaces default=Active dev=Active kube-system=Active prod=Active", output, StringComparison.Ordinal);
        Assert.Contains("secrets db-credentials", output, StringComparison.Ordinal);
        Assert.Contains(name + ":Tested", output, StringComparison.Ordinal);
        Assert.Contains("missing pod: 404 NotFound pods \"no-such-pod\" not found", output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Jane_Watches_Pods_And_Sees_The_Pod_Created_During_The_Watch(string client)
    {
        var name = Name(client, "w");

        var output = await RunAsync(client, "jane", "watch", "dev", name);

        // client-node's Watch.watch resolves on the response headers, which the gateway held until the first event.
        Assert.Matches($"watched (ADDED|MODIFIED) {name}", output);
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Jane_Creates_Reads_And_Deletes_A_Pod_And_A_ConfigMap(string client)
    {
        var name = Name(client, "c");

        var output = await RunAsync(client, "jane", "create", "dev", name);

        Assert.Matches($"created pod {name} uid [0-9a-f-]{{36}} phase Running imageID docker.io/sandbox/echo@sha256:[0-9a-f]{{64}}", output);
        Assert.Contains($"created configmap {name} data ", output, StringComparison.Ordinal);
        Assert.Contains($"deleted pod {name}", output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Jane_Execs_A_Command_In_A_Pod_Over_The_Clients_WebSocket_Stream(string client)
    {
        var output = await RunAsync(client, "jane", "exec", "dev", "web-1");

        Assert.Contains($"hello from {client}", output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Jane_Reads_The_Logs_Of_A_Pod(string client)
    {
        var output = await RunAsync(client, "jane", "logs", "dev", "web-2");

        Assert.Contains("logs: listening on :8080 | ready", output, StringComparison.Ordinal);
    }

    private static string Name(string client, string what) => $"{client}-{what}-{Guid.NewGuid():N}"[..20];

    /// <summary>Runs one operation of <paramref name="client"/>'s script; fails with its own output when it does not exit 0.</summary>
    private async Task<string> RunAsync(string client, string user, params string[] operation)
    {
        var (file, script) = OfficialClients.Command(client);
        var result = await ExternalTool.RunAsync(file, [script, fixture.Demo.Kubeconfig(user), .. operation],
            environment: new Dictionary<string, string> { ["PYTHONDONTWRITEBYTECODE"] = "1", ["NO_COLOR"] = "1" },
            timeout: RunTimeout);
        Assert.True(result.ExitCode == 0,
            $"{client} {string.Join(' ', operation)} as {user} exited {result.ExitCode}\nstdout:\n{result.Stdout}\nstderr:\n{result.Stderr}");
        return result.Stdout;
    }
}

/// <summary>Where the client scripts and their interpreters are; a missing one is an assertion failure naming the install step.</summary>
internal static class OfficialClients
{
    /// <summary>Debian's interpreter: apt installs python3-kubernetes into its dist-packages, not into a pyenv or venv python.</summary>
    private const string DebianPython = "/usr/bin/python3";

    public static (string File, string Script) Command(string client)
    {
        var root = ClientsDirectory();
        switch (client)
        {
            case "python":
                if (!File.Exists(DebianPython))
                {
                    Assert.Fail($"{DebianPython} is missing: the python client tests need Debian's python3-kubernetes (run .ci/run, or apt-get install python3-kubernetes)");
                }
                if (!Directory.Exists("/usr/lib/python3/dist-packages/kubernetes"))
                {
                    Assert.Fail("python3-kubernetes is not installed: run .ci/run, or apt-get install python3-kubernetes");
                }
                return (DebianPython, Path.Combine(root, "python", "client.py"));
            case "node":
                var node = ExternalTool.Find("node");
                if (node is null)
                {
                    Assert.Fail("node is not on PATH: the node client tests need Node.js and npm");
                }
                var dir = Path.Combine(root, "node");
                if (!Directory.Exists(Path.Combine(dir, "node_modules", "@kubernetes", "client-node")))
                {
                    Assert.Fail($"@kubernetes/client-node is not installed: run .ci/run, or 'npm ci' in {dir}");
                }
                return (node, Path.Combine(dir, "client.mjs"));
            default:
                throw new ArgumentOutOfRangeException(nameof(client), client, "python or node");
        }
    }

    private static string ClientsDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "clients");
            if (File.Exists(Path.Combine(candidate, "python", "client.py")))
            {
                return candidate;
            }
        }
        Assert.Fail($"tests/clients/python/client.py not found above {AppContext.BaseDirectory}");
        return "";
    }
}
