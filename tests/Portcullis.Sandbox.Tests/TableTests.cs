using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Tests;

public sealed class TableTests
{
    private const string TableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

    [Fact]
    public async Task List_Asked_As_Table_Answers_Pod_Columns()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods?labelSelector=app%3Ddb");
        request.Headers.Accept.Clear();
        request.Headers.TryAddWithoutValidation("Accept", TableAccept);

        using var response = await client.SendAsync(request).WaitAsync(TestSandbox.Timeout);
        var table = JsonNode.Parse(await response.Content.ReadAsStringAsync().WaitAsync(TestSandbox.Timeout))!;

        Assert.Equal("Table", table["kind"]!.GetValue<string>());
        Assert.Equal(["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"],
            table["columnDefinitions"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));
        var row = Assert.Single(table["rows"]!.AsArray())!;
        Assert.Equal("db-0", row["cells"]![0]!.GetValue<string>());
        Assert.Equal("1/1", row["cells"]![1]!.GetValue<string>());
        Assert.Equal("Running", row["cells"]![2]!.GetValue<string>());
        Assert.Equal("PartialObjectMetadata", row["object"]!["kind"]!.GetValue<string>());
        Assert.Equal("db", row["object"]!["metadata"]!["labels"]!["app"]!.GetValue<string>());
    }

    [Fact]
    public async Task Plain_Json_Accept_Gets_A_List()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var list = await client.GetJsonAsync("/api/v1/namespaces");

        Assert.Equal("NamespaceList", list["kind"]!.GetValue<string>());
    }

    [Fact]
    public async Task Watch_Asked_As_Table_Sends_One_Row_Tables()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/prod/configmaps?watch=true");
        request.Headers.Accept.Clear();
        request.Headers.TryAddWithoutValidation("Accept", TableAccept);

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        server.AddConfigMap("prod", "flags", new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" });
        var watchEvent = JsonNode.Parse((await reader.ReadLineAsync(timeout.Token))!)!;

        Assert.Equal("ADDED", watchEvent["type"]!.GetValue<string>());
        Assert.Equal("Table", watchEvent["object"]!["kind"]!.GetValue<string>());
        var cells = watchEvent["object"]!["rows"]![0]!["cells"]!.AsArray();
        Assert.Equal("flags", cells[0]!.GetValue<string>());
        Assert.Equal(2, cells[1]!.GetValue<int>());
    }
}
