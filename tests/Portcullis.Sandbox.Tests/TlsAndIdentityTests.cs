using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Tests;

public sealed class TlsAndIdentityTests
{
    private static readonly JsonObject Body = new() { ["metadata"] = new JsonObject { ["name"] = "by-whom" } };

    [Fact]
    public async Task Client_Certificate_From_Another_CA_Is_Refused_At_TLS()
    {
        await using var server = await TestSandbox.StartAsync(seed: false);
        using var client = TestSandbox.Client(server, SandboxPki.Other.Client);

        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/version").WaitAsync(TestSandbox.Timeout));
    }

    [Fact]
    public async Task Identity_Annotation_Is_The_Client_Certificate_CN_By_Default()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var (_, created) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps", Body);

        Assert.Equal("alice", created["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]!.GetValue<string>());
    }

    [Fact]
    public async Task Identity_Annotation_Reflects_Impersonate_User()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        client.DefaultRequestHeaders.Add("Impersonate-User", "jane");
        client.DefaultRequestHeaders.Add("Impersonate-Group", "developers");

        var (_, created) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps", Body);

        Assert.Equal("jane", created["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]!.GetValue<string>());
        var recorded = (await client.GetJsonAsync("/sandbox/requests?limit=1"))["items"]![0]!["identity"]!;
        Assert.Equal("impersonation", recorded["source"]!.GetValue<string>());
        Assert.Equal(["developers"], recorded["groups"]!.AsArray().Select(g => g!.GetValue<string>()));
    }

    [Fact]
    public async Task Identity_Annotation_Reflects_X_Remote_User()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        client.DefaultRequestHeaders.Add("X-Remote-User", "ci-bot");
        client.DefaultRequestHeaders.Add("X-Remote-Extra-Scopes", "deploy");

        var (_, created) = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps", Body);

        Assert.Equal("ci-bot", created["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]!.GetValue<string>());
        var recorded = (await client.GetJsonAsync("/sandbox/requests?limit=1"))["items"]![0]!["identity"]!;
        Assert.Equal("deploy", recorded["extra"]!["scopes"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task Requests_Endpoint_Records_Method_Path_Headers_And_Identity()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods?limit=1");
        request.Headers.Add("X-Test-Marker", ["one", "two"]);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "very-secret-token");
        using var response = await client.SendAsync(request).WaitAsync(TestSandbox.Timeout);

        var items = (await client.GetJsonAsync("/sandbox/requests?limit=1"))["items"]!.AsArray();

        var recorded = Assert.Single(items)!;
        Assert.Equal("GET", recorded["method"]!.GetValue<string>());
        Assert.Equal("/api/v1/namespaces/dev/pods?limit=1", recorded["path"]!.GetValue<string>());
        var marker = recorded["headers"]!["X-Test-Marker"]!.AsArray().Select(v => v!.GetValue<string>()).ToList();
        Assert.Equal("one,two", string.Join(',', marker.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries))));
        var authorization = recorded["headers"]!["Authorization"]![0]!.GetValue<string>();
        Assert.DoesNotContain("very-secret-token", authorization, StringComparison.Ordinal);
        Assert.StartsWith("redacted sha256:", authorization, StringComparison.Ordinal);
        Assert.Equal("alice", recorded["identity"]!["username"]!.GetValue<string>());
        Assert.Equal(["system:masters", "dev-team"], recorded["identity"]!["groups"]!.AsArray().Select(g => g!.GetValue<string>()));
        Assert.False(string.IsNullOrEmpty(recorded["time"]!.GetValue<string>()));
    }
}
