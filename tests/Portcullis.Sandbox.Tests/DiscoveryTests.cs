using System.Net;

namespace Portcullis.Sandbox.Tests;

public sealed class DiscoveryTests
{
    [Fact]
    public async Task Version_Reports_1_32()
    {
        await using var server = await TestSandbox.StartAsync(seed: false);
        using var client = TestSandbox.Client(server);

        var version = await client.GetJsonAsync("/version?timeout=5s");

        Assert.Equal("1", version["major"]!.GetValue<string>());
        Assert.Equal("32", version["minor"]!.GetValue<string>());
        Assert.StartsWith("v1.32.", version["gitVersion"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Api_And_Apis_List_The_Served_Groups()
    {
        await using var server = await TestSandbox.StartAsync(seed: false);
        using var client = TestSandbox.Client(server);

        var api = await client.GetJsonAsync("/api");
        var apis = await client.GetJsonAsync("/apis");

        Assert.Equal("APIVersions", api["kind"]!.GetValue<string>());
        Assert.Equal("v1", api["versions"]![0]!.GetValue<string>());
        var groups = apis["groups"]!.AsArray().Select(g => g!["name"]!.GetValue<string>()).ToList();
        Assert.Contains("apps", groups);
        Assert.Contains("coordination.k8s.io", groups);
        var apps = await client.GetJsonAsync("/apis/apps");
        Assert.Equal("apps/v1", apps["preferredVersion"]!["groupVersion"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("/api/v1", "pods", "Pod", true, "po")]
    [InlineData("/api/v1", "namespaces", "Namespace", false, "ns")]
    [InlineData("/api/v1", "configmaps", "ConfigMap", true, "cm")]
    [InlineData("/api/v1", "secrets", "Secret", true, null)]
    [InlineData("/api/v1", "serviceaccounts", "ServiceAccount", true, "sa")]
    [InlineData("/api/v1", "events", "Event", true, "ev")]
    [InlineData("/apis/apps/v1", "deployments", "Deployment", true, "deploy")]
    [InlineData("/apis/coordination.k8s.io/v1", "leases", "Lease", true, null)]
    public async Task ResourceLists_Describe_Each_Resource(string path, string name, string kind, bool namespaced, string? shortName)
    {
        await using var server = await TestSandbox.StartAsync(seed: false);
        using var client = TestSandbox.Client(server);

        var list = await client.GetJsonAsync(path);

        Assert.Equal("APIResourceList", list["kind"]!.GetValue<string>());
        var resource = list["resources"]!.AsArray().Single(r => r!["name"]!.GetValue<string>() == name)!;
        Assert.Equal(kind, resource["kind"]!.GetValue<string>());
        Assert.Equal(namespaced, resource["namespaced"]!.GetValue<bool>());
        var verbs = resource["verbs"]!.AsArray().Select(v => v!.GetValue<string>()).ToList();
        Assert.Equal(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"], verbs);
        if (shortName is not null)
        {
            Assert.Contains(shortName, resource["shortNames"]!.AsArray().Select(s => s!.GetValue<string>()));
        }
    }

    [Theory]
    [InlineData("/healthz")]
    [InlineData("/livez")]
    [InlineData("/readyz")]
    public async Task Health_Endpoints_Answer_Ok(string path)
    {
        await using var server = await TestSandbox.StartAsync(seed: false);
        using var client = TestSandbox.Client(server);

        var body = await client.GetStringAsync(path).WaitAsync(TestSandbox.Timeout);

        Assert.Equal("ok", body);
    }

    [Fact]
    public async Task Unknown_Path_Is_A_NotFound_Status()
    {
        await using var server = await TestSandbox.StartAsync(seed: false);
        using var client = TestSandbox.Client(server);

        var (status, body) = await client.SendJsonAsync(HttpMethod.Get, "/apis/batch/v1/jobs");

        Assert.Equal((int)HttpStatusCode.NotFound, status);
        Assert.Equal("Status", body["kind"]!.GetValue<string>());
        Assert.Equal("NotFound", body["reason"]!.GetValue<string>());
    }
}
