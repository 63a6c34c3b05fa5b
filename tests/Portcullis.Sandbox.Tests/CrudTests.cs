using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Tests;

public sealed class CrudTests
{
    private static JsonObject ConfigMap(string name, string value) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "ConfigMap",
        ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = new JsonObject { ["team"] = "a" } },
        ["data"] = new JsonObject { ["key"] = value },
    };

    [Fact]
    public async Task Create_Get_Update_Patch_Delete_A_ConfigMap()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        const string collection = "/api/v1/namespaces/dev/configmaps";

        var (createStatus, created) = await client.SendJsonAsync(HttpMethod.Post, collection, ConfigMap("settings", "one"));
        Assert.Equal(201, createStatus);
        var metadata = created["metadata"]!;
        Assert.Equal("dev", metadata["namespace"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(metadata["uid"]!.GetValue<string>()));
        Assert.False(string.IsNullOrEmpty(metadata["creationTimestamp"]!.GetValue<string>()));
        var firstVersion = long.Parse(metadata["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);

        var fetched = await client.GetJsonAsync(collection + "/settings");
        Assert.Equal("one", fetched["data"]!["key"]!.GetValue<string>());

        fetched["data"]!["key"] = "two";
        var (updateStatus, updated) = await client.SendJsonAsync(HttpMethod.Put, collection + "/settings", fetched);
        Assert.Equal(200, updateStatus);
        Assert.Equal("two", updated["data"]!["key"]!.GetValue<string>());
        Assert.True(long.Parse(updated["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > firstVersion);
        Assert.Equal(metadata["uid"]!.GetValue<string>(), updated["metadata"]!["uid"]!.GetValue<string>());

        // The version fetched before the update is stale now.
        var (conflictStatus, conflict) = await client.SendJsonAsync(HttpMethod.Put, collection + "/settings", ConfigMapWithVersion(firstVersion));
        Assert.Equal(409, conflictStatus);
        Assert.Equal("Conflict", conflict["reason"]!.GetValue<string>());

        var (mergeStatus, merged) = await client.SendJsonAsync(HttpMethod.Patch, collection + "/settings",
            new JsonObject { ["data"] = new JsonObject { ["extra"] = "x", ["key"] = null } }, "application/merge-patch+json");
        Assert.Equal(200, mergeStatus);
        Assert.Equal("x", merged["data"]!["extra"]!.GetValue<string>());
        Assert.Null(merged["data"]!["key"]);

        var (strategicStatus, strategic) = await client.SendJsonAsync(HttpMethod.Patch, collection + "/settings",
            new JsonObject { ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["env"] = "test" } } }, "application/strategic-merge-patch+json");
        Assert.Equal(200, strategicStatus);
        Assert.Equal("test", strategic["metadata"]!["labels"]!["env"]!.GetValue<string>());
        Assert.Equal("a", strategic["metadata"]!["labels"]!["team"]!.GetValue<string>());

        var (jsonPatchStatus, jsonPatched) = await client.SendJsonAsync(HttpMethod.Patch, collection + "/settings",
            new JsonArray(new JsonObject { ["op"] = "replace", ["path"] = "/data/extra", ["value"] = "y" }), "application/json-patch+json");
        Assert.Equal(200, jsonPatchStatus);
        Assert.Equal("y", jsonPatched["data"]!["extra"]!.GetValue<string>());

        var uid = jsonPatched["metadata"]!["uid"]!.GetValue<string>();
        var (deleteStatus, deleted) = await client.SendJsonAsync(HttpMethod.Delete, collection + "/settings");
        Assert.Equal(200, deleteStatus);
        // A ConfigMap's registry does not return the deleted object: kube-apiserver answers a Success Status naming it.
        Assert.Equal(
            $$$"""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"settings","kind":"configmaps","uid":"{{{uid}}}"}}""",
            deleted.ToJsonString());

        using var missing = await client.GetAsync(collection + "/settings").WaitAsync(TestSandbox.Timeout);
        Assert.Equal(404, (int)missing.StatusCode);
        Assert.Equal("application/json", missing.Content.Headers.ContentType?.MediaType);
        Assert.Equal(
            """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"settings\" not found","reason":"NotFound","details":{"name":"settings","kind":"configmaps"},"code":404}""",
            await missing.Content.ReadAsStringAsync().WaitAsync(TestSandbox.Timeout));

        static JsonObject ConfigMapWithVersion(long version)
        {
            var stale = ConfigMap("settings", "three");
            stale["metadata"]!["resourceVersion"] = version.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return stale;
        }
    }

    [Fact]
    public async Task Creating_Twice_Is_AlreadyExists()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps", ConfigMap("twice", "1"));
        var (status, body) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps", ConfigMap("twice", "2"));

        Assert.Equal(409, status);
        Assert.Equal("AlreadyExists", body["reason"]!.GetValue<string>());
        Assert.Equal("configmaps \"twice\" already exists", body["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Creating_In_A_Missing_Namespace_Is_NotFound()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var (status, body) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/nowhere/configmaps", ConfigMap("x", "1"));

        Assert.Equal(404, status);
        Assert.Equal("namespaces \"nowhere\" not found", body["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Grouped_Resources_Are_Named_With_Their_Group_In_Status()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var (status, body) = await client.SendJsonAsync(HttpMethod.Get, "/apis/apps/v1/namespaces/dev/deployments/ghost");

        Assert.Equal(404, status);
        Assert.Equal("deployments.apps \"ghost\" not found", body["message"]!.GetValue<string>());
        Assert.Equal("apps", body["details"]!["group"]!.GetValue<string>());
    }

    [Fact]
    public async Task Deployments_And_Leases_Round_Trip()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var (deploymentStatus, deployment) = await client.SendJsonAsync(HttpMethod.Post, "/apis/apps/v1/namespaces/dev/deployments", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "web" },
            ["spec"] = new JsonObject { ["replicas"] = 2 },
        });
        var (leaseStatus, lease) = await client.SendJsonAsync(HttpMethod.Post, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "leader" },
            ["spec"] = new JsonObject { ["holderIdentity"] = "me" },
        });

        Assert.Equal(201, deploymentStatus);
        Assert.Equal("apps/v1", deployment["apiVersion"]!.GetValue<string>());
        Assert.Equal("Deployment", deployment["kind"]!.GetValue<string>());
        Assert.Equal(201, leaseStatus);
        Assert.Equal("coordination.k8s.io/v1", lease["apiVersion"]!.GetValue<string>());
        var leases = await client.GetJsonAsync("/apis/coordination.k8s.io/v1/leases");
        Assert.Equal(["leader"], TestSandbox.Names(leases));
    }

    [Fact]
    public async Task Delete_Answers_The_Object_Where_Kube_Apiservers_Registry_Does_And_A_Success_Status_Elsewhere()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        // Pods (like namespaces and service accounts) have ReturnDeletedObject: the deleted Pod comes back.
        var (podStatus, pod) = await client.SendJsonAsync(HttpMethod.Delete, "/api/v1/namespaces/dev/pods/db-0");
        Assert.Equal(200, podStatus);
        Assert.Equal("Pod", pod["kind"]!.GetValue<string>());
        Assert.Equal("db-0", pod["metadata"]!["name"]!.GetValue<string>());

        // A Deployment's registry answers a Status; its details carry the group and the resource as "kind".
        var (createStatus, created) = await client.SendJsonAsync(HttpMethod.Post, "/apis/apps/v1/namespaces/dev/deployments",
            JsonNode.Parse("""{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api"},"spec":{"selector":{"matchLabels":{"app":"api"}},"template":{"metadata":{"labels":{"app":"api"}},"spec":{"containers":[{"name":"api","image":"nginx"}]}}}}""")!.AsObject());
        Assert.Equal(201, createStatus);
        var uid = created["metadata"]!["uid"]!.GetValue<string>();
        var (deploymentStatus, status) = await client.SendJsonAsync(HttpMethod.Delete, "/apis/apps/v1/namespaces/dev/deployments/api");
        Assert.Equal(200, deploymentStatus);
        Assert.Equal(
            $$$"""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"api","group":"apps","kind":"deployments","uid":"{{{uid}}}"}}""",
            status.ToJsonString());
    }

    [Fact]
    public async Task DeleteCollection_Removes_Only_Matching_Objects()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var (status, _) = await client.SendJsonAsync(HttpMethod.Delete, "/api/v1/namespaces/dev/pods?labelSelector=app%3Dweb");
        var remaining = await client.GetJsonAsync("/api/v1/namespaces/dev/pods");

        Assert.Equal(200, status);
        Assert.Equal(["db-0"], TestSandbox.Names(remaining));
    }

    [Fact]
    public async Task Deleting_A_Namespace_Deletes_Its_Objects()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var (status, _) = await client.SendJsonAsync(HttpMethod.Delete, "/api/v1/namespaces/prod");
        var pods = await client.GetJsonAsync("/api/v1/pods");

        Assert.Equal(200, status);
        Assert.DoesNotContain(pods["items"]!.AsArray(), p => p!["metadata"]!["namespace"]!.GetValue<string>() == "prod");
    }

    [Fact]
    public async Task Limit_And_Continue_Page_Through_A_List()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var first = await client.GetJsonAsync("/api/v1/pods?limit=4");
        var token = first["metadata"]!["continue"]!.GetValue<string>();
        var second = await client.GetJsonAsync("/api/v1/pods?limit=4&continue=" + Uri.EscapeDataString(token));
        var all = await client.GetJsonAsync("/api/v1/pods");

        Assert.Equal(4, first["items"]!.AsArray().Count);
        Assert.Equal(all["items"]!.AsArray().Count - 4, first["metadata"]!["remainingItemCount"]!.GetValue<long>());
        Assert.Null(second["metadata"]!["continue"]);
        Assert.Equal(
            all["items"]!.AsArray().Select(Key),
            first["items"]!.AsArray().Concat(second["items"]!.AsArray()).Select(Key));

        static string Key(JsonNode? item) => item!["metadata"]!["namespace"] + "/" + item["metadata"]!["name"];
    }

    [Fact]
    public async Task ResourceVersion_Increases_Across_Resources()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var (_, a) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps", ConfigMap("a", "1"));
        var (_, b) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/secrets",
            new JsonObject { ["metadata"] = new JsonObject { ["name"] = "b" } });

        Assert.True(long.Parse(b["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture)
            > long.Parse(a["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void CreateObject_Seeds_Programmatically()
    {
        // No network: the store is usable before and without any client.
        var store = new Storage.ObjectStore();
        store.Create(Storage.ResourceTypes.Namespaces, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = "team" } }, "tester");
        var pod = store.Create(Storage.ResourceTypes.Pods, "team", new JsonObject { ["metadata"] = new JsonObject { ["name"] = "p" } }, "tester");

        Assert.Equal("Running", pod["status"]!["phase"]!.GetValue<string>());
        Assert.Equal("tester", pod["metadata"]!["annotations"]![Storage.ObjectStore.CreatedByAnnotation]!.GetValue<string>());
    }

    [Fact]
    public async Task SandboxDelayMs_holds_the_answer_and_refuses_a_bad_value()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var started = System.Diagnostics.Stopwatch.StartNew();
        var list = await client.GetJsonAsync("/api/v1/namespaces/dev/pods?sandboxDelayMs=600");
        var took = started.Elapsed;
        using var bad = await client.GetAsync(new Uri("/api/v1/namespaces/dev/pods?sandboxDelayMs=soon", UriKind.Relative)).WaitAsync(TestSandbox.Timeout);
        var badBody = await bad.Content.ReadAsStringAsync().WaitAsync(TestSandbox.Timeout);

        Assert.Equal("PodList", list["kind"]!.GetValue<string>());
        Assert.True(took >= TimeSpan.FromMilliseconds(550), $"answered after {took}");
        Assert.Equal(400, (int)bad.StatusCode);
        Assert.Contains("sandboxDelayMs: \\\"soon\\\" is not a number of milliseconds", badBody, StringComparison.Ordinal);
    }
}
