using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Tests;

public sealed class SelectorTests
{
    // Seeded pods in dev: web-1, web-2 (app=web, tier=frontend), db-0 (app=db, tier=backend).
    [Theory]
    [InlineData("app=web", "web-1,web-2")]
    [InlineData("app==db", "db-0")]
    [InlineData("app!=web", "db-0")]
    [InlineData("app in (db, web)", "db-0,web-1,web-2")]
    [InlineData("tier notin (frontend)", "db-0")]
    [InlineData("app", "db-0,web-1,web-2")]
    [InlineData("!app", "")]
    [InlineData("app=web,tier=backend", "")]
    [InlineData("app in (web,db),tier!=backend", "web-1,web-2")]
    public async Task LabelSelector_Filters_Pods(string selector, string expected)
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var list = await client.GetJsonAsync("/api/v1/namespaces/dev/pods?labelSelector=" + Uri.EscapeDataString(selector));

        Assert.Equal(expected, string.Join(',', TestSandbox.Names(list)));
    }

    [Fact]
    public async Task FieldSelector_On_Name_Picks_One_Object()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var list = await client.GetJsonAsync("/api/v1/pods?fieldSelector=" + Uri.EscapeDataString("metadata.name=web-1"));
        var notList = await client.GetJsonAsync("/api/v1/namespaces/dev/pods?fieldSelector=" + Uri.EscapeDataString("metadata.name!=web-1"));

        Assert.Equal(["web-1", "web-1"], TestSandbox.Names(list));
        Assert.Equal(["db-0", "web-2"], TestSandbox.Names(notList));
    }

    [Fact]
    public async Task Malformed_Selector_Is_A_BadRequest()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var (status, body) = await client.SendJsonAsync(HttpMethod.Get, "/api/v1/pods?labelSelector=" + Uri.EscapeDataString("app in (web"));

        Assert.Equal(400, status);
        Assert.Equal("BadRequest", body["reason"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("")]
    [InlineData("a=b")]
    [InlineData("a in (x,y), !c, d notin (z)")]
    public void LabelSelector_Parses_Valid_Text(string text) => LabelSelector.Parse(text);

    [Theory]
    [InlineData("a in x")]
    [InlineData("a,,b")]
    [InlineData("a in (x")]
    public void LabelSelector_Rejects_Invalid_Text(string text) => Assert.Throws<FormatException>(() => LabelSelector.Parse(text));
}
