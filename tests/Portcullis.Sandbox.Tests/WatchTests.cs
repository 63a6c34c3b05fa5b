using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Tests;

public sealed class WatchTests
{
    [Fact]
    public async Task Watch_From_List_ResourceVersion_Sees_An_Object_Created_Later()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);
        var list = await client.GetJsonAsync("/api/v1/namespaces/dev/configmaps");
        var version = list["metadata"]!["resourceVersion"]!.GetValue<string>();

        // The response headers come back once the watch is registered, so nothing created afterwards can be missed.
        using var response = await client.GetAsync($"/api/v1/namespaces/dev/configmaps?watch=true&resourceVersion={version}",
            HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        await client.SendJsonAsync(HttpMethod.Post, "/api/v1/namespaces/dev/configmaps",
            new JsonObject { ["metadata"] = new JsonObject { ["name"] = "late" } });

        var line = await reader.ReadLineAsync(timeout.Token);
        var watchEvent = JsonNode.Parse(line!)!;

        Assert.Equal("ADDED", watchEvent["type"]!.GetValue<string>());
        Assert.Equal("late", watchEvent["object"]!["metadata"]!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Watch_Without_ResourceVersion_Starts_With_Existing_Objects_Then_Streams_Changes()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);

        using var response = await client.GetAsync("/api/v1/namespaces/dev/pods?watch=1&labelSelector=app%3Dweb",
            HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        var initial = new[] { await NextAsync(reader, timeout.Token), await NextAsync(reader, timeout.Token) };
        await client.SendJsonAsync(HttpMethod.Patch, "/api/v1/namespaces/dev/pods/web-1",
            new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { ["touched"] = "yes" } } }, "application/merge-patch+json");
        var modified = await NextAsync(reader, timeout.Token);
        await client.SendJsonAsync(HttpMethod.Delete, "/api/v1/namespaces/dev/pods/web-2");
        var deleted = await NextAsync(reader, timeout.Token);

        Assert.All(initial, e => Assert.Equal("ADDED", e.Type));
        Assert.Equal(["web-1", "web-2"], initial.Select(e => e.Name).Order());
        Assert.Equal(("MODIFIED", "web-1"), modified);
        Assert.Equal(("DELETED", "web-2"), deleted);

        static async Task<(string Type, string Name)> NextAsync(StreamReader reader, CancellationToken cancel)
        {
            var line = await reader.ReadLineAsync(cancel);
            var node = JsonNode.Parse(line!)!;
            return (node["type"]!.GetValue<string>(), node["object"]!["metadata"]!["name"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task Store_Writes_Reach_Api_Watchers()
    {
        await using var server = await TestSandbox.StartAsync(seed: false);
        using var client = TestSandbox.Client(server);
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);

        using var response = await client.GetAsync("/api/v1/namespaces?watch=true", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        server.AddNamespace("programmatic");
        var line = await reader.ReadLineAsync(timeout.Token);

        Assert.Contains("\"programmatic\"", line, StringComparison.Ordinal);
    }
}
