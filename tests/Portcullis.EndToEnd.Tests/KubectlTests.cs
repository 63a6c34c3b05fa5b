using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>The real kubectl through the demo's gateway, with the demo's own kubeconfigs.</summary>
[Collection(DemoCollection.Name)]
public sealed class KubectlTests(DemoFixture fixture)
{
    private static readonly TimeSpan StreamTimeout = TimeSpan.FromSeconds(30);

    private DemoProcess Demo => fixture.Demo;

    private static string NewName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    [KubectlFact]
    public async Task Admin_Gets_Lists_Creates_And_Deletes_Through_The_Gateway()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("admin"));
        var name = NewName("e2e-admin");

        var list = await kubectl.RunAsync("get", "pods", "-n", "dev");
        var created = await kubectl.RunAsync("create", "configmap", name, "-n", "dev", "--from-literal=color=blue");
        var fetched = await kubectl.RunAsync("get", "configmap", name, "-n", "dev", "-o", "json");
        var listed = await kubectl.RunAsync("get", "configmaps", "-n", "dev");
        var deleted = await kubectl.RunAsync("delete", "configmap", name, "-n", "dev");
        var gone = await kubectl.RunAsync("get", "configmap", name, "-n", "dev");

        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("web-1", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("db-0", list.Stdout, StringComparison.Ordinal);
        Assert.True(created.ExitCode == 0, created.ToString());
        Assert.True(fetched.ExitCode == 0, fetched.ToString());
        var configMap = JsonNode.Parse(fetched.Stdout)!;
        Assert.Equal("blue", (string?)configMap["data"]!["color"]);
        Assert.Equal("admin", (string?)configMap["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]);
        Assert.Contains(name, listed.Stdout, StringComparison.Ordinal);
        Assert.True(deleted.ExitCode == 0, deleted.ToString());
        Assert.NotEqual(0, gone.ExitCode);
        Assert.Contains($"configmaps \"{name}\" not found", gone.Stderr, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Jane_Gets_Pods_In_Dev()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("jane"));

        var result = await kubectl.RunAsync("get", "pods", "-n", "dev");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("web-1", result.Stdout, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Jane_Creates_And_Deletes_A_ConfigMap_In_Dev_As_Herself()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("jane"));
        var name = NewName("e2e-jane");

        var created = await kubectl.RunAsync("create", "configmap", name, "-n", "dev", "--from-literal=a=b");
        var fetched = await kubectl.RunAsync("get", "configmap", name, "-n", "dev", "-o", "json");
        var deleted = await kubectl.RunAsync("delete", "configmap", name, "-n", "dev");

        Assert.True(created.ExitCode == 0, created.ToString());
        Assert.True(fetched.ExitCode == 0, fetched.ToString());
        Assert.Equal("jane", (string?)JsonNode.Parse(fetched.Stdout)!["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]);
        Assert.True(deleted.ExitCode == 0, deleted.ToString());
    }

    [KubectlFact]
    public async Task Jane_Execs_And_Reads_Logs_In_Dev()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("jane"));

        var exec = await kubectl.RunAsync("exec", "web-1", "-n", "dev", "--", "echo", "from-jane");
        var logs = await kubectl.RunAsync("logs", "web-1", "-n", "dev");

        Assert.True(exec.ExitCode == 0, exec.ToString());
        Assert.Equal("from-jane\n", exec.Stdout);
        Assert.True(logs.ExitCode == 0, logs.ToString());
        Assert.NotEmpty(logs.Stdout);
    }

    // Denied today too, but kubectl first needs discovery, which only the system:discovery binding allows.
    [KubectlFact]
    public async Task Jane_Listing_Secrets_In_Prod_Is_Forbidden_In_KubeApiservers_Words()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("jane"));

        var result = await kubectl.RunAsync("get", "secrets", "-n", "prod");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("Error from server (Forbidden): secrets is forbidden: User \"jane\" cannot list resource \"secrets\" in API group \"\" in the namespace \"prod\"",
            result.Stderr, StringComparison.Ordinal);
    }

    // Denied today too, but kubectl first needs discovery, which only the system:discovery binding allows.
    [KubectlFact]
    public async Task Jane_Is_Forbidden_Pods_And_ConfigMaps_In_Prod()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("jane"));
        var name = NewName("e2e-jane-prod");

        var list = await kubectl.RunAsync("get", "pods", "-n", "prod");
        var create = await kubectl.RunAsync("create", "configmap", name, "-n", "prod", "--from-literal=a=b");

        Assert.NotEqual(0, list.ExitCode);
        Assert.Contains("pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"prod\"", list.Stderr, StringComparison.Ordinal);
        Assert.NotEqual(0, create.ExitCode);
        Assert.Contains("configmaps is forbidden: User \"jane\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"prod\"", create.Stderr, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task CiBot_Token_Lists_Pods_In_Every_Namespace()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("ci-bot"));

        var result = await kubectl.RunAsync("get", "pods", "-A");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("coredns-0", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("api-1", result.Stdout, StringComparison.Ordinal);
    }

    // Denied today too, but kubectl first needs discovery, which only the system:discovery binding allows.
    [KubectlFact]
    public async Task CiBot_Token_Is_Forbidden_To_Delete_A_Pod()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("ci-bot"));

        var result = await kubectl.RunAsync("delete", "pod", "web-1", "-n", "prod", "--wait=false");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("pods \"web-1\" is forbidden: User \"ci-bot\" cannot delete resource \"pods\" in API group \"\" in the namespace \"prod\"",
            result.Stderr, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Get_Pods_Watch_Sees_A_Pod_Created_By_The_Kubernetes_Client()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("admin"));
        using var client = fixture.KubernetesClient("admin");
        var name = NewName("e2e-watched");

        using var watch = kubectl.StartStreaming("get", "pods", "-n", "dev", "-w");
        await watch.ReadUntilAsync(line => line.StartsWith("web-1", StringComparison.Ordinal), StreamTimeout);
        await client.CoreV1.CreateNamespacedPodAsync(NewPod(name), "dev").WaitAsync(StreamTimeout);
        var seen = await watch.ReadUntilAsync(line => line.StartsWith(name, StringComparison.Ordinal), StreamTimeout);
        await client.CoreV1.DeleteNamespacedPodAsync(name, "dev").WaitAsync(StreamTimeout);

        Assert.Contains(name, seen, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Logs_Follow_Streams_Until_Stopped()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("admin"));

        using var logs = kubectl.StartStreaming("logs", "-f", "web-1", "-n", "dev");
        var seen = await logs.ReadUntilAsync(line => line.Contains("heartbeat 2", StringComparison.Ordinal), StreamTimeout);

        Assert.Contains("heartbeat 1", seen, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Exec_Over_WebSocket_Echoes()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("admin"));

        var result = await kubectl.RunAsync("exec", "web-1", "-n", "dev", "--", "echo", "over", "websocket");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("over websocket\n", result.Stdout);
    }

    [KubectlFact]
    public async Task Exec_Over_Spdy_Echoes_And_Reports_The_Exit_Code()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("admin"));
        var spdy = new Dictionary<string, string> { ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS"] = "false" };

        var echo = await kubectl.RunWithAsync(spdy, "exec", "web-1", "-n", "dev", "--", "echo", "over", "spdy");
        var failing = await kubectl.RunWithAsync(spdy, "exec", "web-1", "-n", "dev", "--", "exit", "3");

        Assert.True(echo.ExitCode == 0, echo.ToString());
        Assert.Equal("over spdy\n", echo.Stdout);
        Assert.Equal(3, failing.ExitCode);
    }

    [KubectlFact]
    public async Task Admin_May_Impersonate_And_The_Sandbox_Records_The_Impersonated_User()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("admin"));
        var name = NewName("e2e-as");

        var created = await kubectl.RunAsync("--as=impersonated-admin", "--as-group=system:masters",
            "create", "configmap", name, "-n", "dev", "--from-literal=a=b");
        var fetched = await kubectl.RunAsync("get", "configmap", name, "-n", "dev", "-o", "json");
        await kubectl.RunAsync("delete", "configmap", name, "-n", "dev");

        Assert.True(created.ExitCode == 0, created.ToString());
        Assert.True(fetched.ExitCode == 0, fetched.ToString());
        Assert.Equal("impersonated-admin", (string?)JsonNode.Parse(fetched.Stdout)!["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]);
    }

    [KubectlFact]
    public async Task Jane_May_Not_Impersonate()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("jane"));

        // --raw: kubectl's discovery step would print only "Forbidden: unknown" for a refused discovery request.
        var result = await kubectl.RunAsync("--as=admin", "get", "--raw", "/api/v1/namespaces/dev/pods");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("users \"admin\" is forbidden: User \"jane\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            result.Stderr, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Intruder_Gets_No_HTTP_Answer_At_All()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("intruder"));

        // get --raw: one request, so kubectl's discovery retries do not stretch the test.
        var result = await kubectl.RunAsync("get", "--raw", "/api/v1/namespaces/dev/pods");

        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain("Error from server", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("Unable to connect to the server", result.Stderr, StringComparison.Ordinal);
    }

    [KubectlFact]
    public async Task Thief_With_A_Revoked_Certificate_Of_The_Demo_CA_Gets_No_HTTP_Answer()
    {
        using var kubectl = new Kubectl(Demo.Kubeconfig("thief"));

        var result = await kubectl.RunAsync("get", "--raw", "/api/v1/namespaces/dev/pods");

        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain("Error from server", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("Unable to connect to the server", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("thief.kubeconfig get pods", Demo.Output, StringComparison.Ordinal); // the banner shows it
    }

    internal static V1Pod NewPod(string name) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["app"] = "e2e" } },
        Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = "busybox" }] },
    };
}
