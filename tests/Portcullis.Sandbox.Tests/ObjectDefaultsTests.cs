using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Tests;

/// <summary>
/// New objects carry what kube-apiserver, the scheduler and a kubelet would add: every field the official clients'
/// strict models require (python3-kubernetes raised "Invalid value for `image_id`, must not be `None`" on the
/// sandbox's pods), and only where the client sent nothing.
/// </summary>
public sealed class ObjectDefaultsTests
{
    [Fact]
    public async Task A_New_Pod_Has_Every_Field_The_Strict_Models_Require_And_The_Apiserver_Defaults()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        var pod = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject { ["name"] = "strict" },
            ["spec"] = new JsonObject
            {
                ["restartPolicy"] = "Never",
                ["containers"] = new JsonArray(
                    new JsonObject { ["name"] = "app", ["image"] = "nginx" },
                    new JsonObject { ["name"] = "side", ["image"] = "registry.example:5000/team/tool:1.2", ["ports"] = new JsonArray(new JsonObject { ["containerPort"] = 80 }) }),
            },
        };

        var (status, created) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/pods", pod);

        Assert.Equal(201, status);
        var statuses = created["status"]!["containerStatuses"]!.AsArray();
        Assert.Equal(["app", "side"], statuses.Select(s => s!["name"]!.GetValue<string>()));
        foreach (var s in statuses)
        {
            Assert.True(s!["ready"]!.GetValue<bool>());
            Assert.Equal(0, s["restartCount"]!.GetValue<int>());
            Assert.NotNull(s["state"]!["running"]!["startedAt"]);
            Assert.Matches("^containerd://[0-9a-f]{64}$", s["containerID"]!.GetValue<string>());
        }
        Assert.Equal("docker.io/library/nginx:latest", statuses[0]!["image"]!.GetValue<string>());
        Assert.Matches("^docker.io/library/nginx@sha256:[0-9a-f]{64}$", statuses[0]!["imageID"]!.GetValue<string>());
        Assert.Equal("registry.example:5000/team/tool:1.2", statuses[1]!["image"]!.GetValue<string>());
        Assert.Matches("^registry.example:5000/team/tool@sha256:[0-9a-f]{64}$", statuses[1]!["imageID"]!.GetValue<string>());
        Assert.Equal(["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"],
            created["status"]!["conditions"]!.AsArray().Select(c => c!["type"]!.GetValue<string>()));
        Assert.All(created["status"]!["conditions"]!.AsArray(), c => Assert.Equal("True", c!["status"]!.GetValue<string>()));
        Assert.Equal("BestEffort", created["status"]!["qosClass"]!.GetValue<string>());
        Assert.Equal(created["status"]!["podIP"]!.GetValue<string>(), created["status"]!["podIPs"]![0]!["ip"]!.GetValue<string>());

        var spec = created["spec"]!;
        Assert.Equal("Never", spec["restartPolicy"]!.GetValue<string>()); // the client's value is kept
        Assert.Equal("ClusterFirst", spec["dnsPolicy"]!.GetValue<string>());
        Assert.Equal(30, spec["terminationGracePeriodSeconds"]!.GetValue<int>());
        Assert.Equal("default", spec["serviceAccountName"]!.GetValue<string>());
        Assert.Equal("sandbox-node", spec["nodeName"]!.GetValue<string>());
        Assert.Equal("Always", spec["containers"]![0]!["imagePullPolicy"]!.GetValue<string>());
        Assert.Equal("IfNotPresent", spec["containers"]![1]!["imagePullPolicy"]!.GetValue<string>());
        Assert.Equal("TCP", spec["containers"]![1]!["ports"]![0]!["protocol"]!.GetValue<string>());
    }

    [Fact]
    public async Task Seeded_Pods_Have_Image_Ids_And_Namespaces_Their_Finalizer()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var pods = await client.GetJsonAsync("/api/v1/pods");
        var ns = await client.GetJsonAsync("/api/v1/namespaces/dev");

        Assert.All(pods["items"]!.AsArray(), p =>
            Assert.Matches("^docker.io/sandbox/echo@sha256:[0-9a-f]{64}$", p!["status"]!["containerStatuses"]![0]!["imageID"]!.GetValue<string>()));
        Assert.Equal("kubernetes", ns["spec"]!["finalizers"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task An_Event_Without_InvolvedObject_Is_Invalid()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        var body = new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Event", ["metadata"] = new JsonObject { ["name"] = "e1" }, ["reason"] = "Test" };

        var (status, answer) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/events", body);

        Assert.Equal(422, status);
        Assert.Equal("Invalid", answer["reason"]!.GetValue<string>());
        Assert.Equal("Event \"e1\" is invalid: involvedObject: Required value", answer["message"]!.GetValue<string>());
    }
}
