using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis bans list|add|remove --admin URL</c>: the running gateway's bans, through its admin endpoints
/// (<c>GET /bans</c>, <c>POST /bans</c>, <c>DELETE /bans/{ip}</c>). Exit 0 on success, 1 when the gateway refuses
/// (its error is printed), 2 when it cannot be reached.
/// </summary>
internal static class BansCommand
{
    public static Command Create()
    {
        var command = new Command("bans", "List, add or remove the source addresses a running gateway bans (network.autoBan), through its admin port.");

        var listAdmin = AdminOption();
        var list = new Command("list", "Print the bans in force: address, reason, failures, expiry, comment.") { listAdmin };
        list.SetAction((parse, ct) => RunAsync(parse.GetValue(listAdmin)!, HttpMethod.Get, "bans", null, PrintList, ct));

        var addAdmin = AdminOption();
        var addIp = new Argument<string>("ip") { Description = "The address to ban" };
        var duration = new Option<string?>("--duration") { Description = "How long (30m, 1h, 24h); default network.autoBan.duration" };
        var addReason = new Option<string?>("--reason") { Description = "A comment kept with the ban, logged and audited" };
        var add = new Command("add", "Ban an address now.") { addAdmin, addIp, duration, addReason };
        add.SetAction((parse, ct) =>
        {
            var body = new JsonObject { ["ip"] = parse.GetValue(addIp) };
            if (parse.GetValue(duration) is { } d)
            {
                body["duration"] = d;
            }
            if (parse.GetValue(addReason) is { } r)
            {
                body["reason"] = r;
            }
            return RunAsync(parse.GetValue(addAdmin)!, HttpMethod.Post, "bans", body, PrintOne("banned"), ct);
        });

        var removeAdmin = AdminOption();
        var removeIp = new Argument<string>("ip") { Description = "The address whose ban to lift" };
        var removeReason = new Option<string?>("--reason") { Description = "A comment logged and audited with the unban" };
        var remove = new Command("remove", "Lift an address's ban.") { removeAdmin, removeIp, removeReason };
        remove.SetAction((parse, ct) =>
        {
            var path = "bans/" + Uri.EscapeDataString(parse.GetValue(removeIp)!);
            if (parse.GetValue(removeReason) is { } r)
            {
                path += "?reason=" + Uri.EscapeDataString(r);
            }
            return RunAsync(parse.GetValue(removeAdmin)!, HttpMethod.Delete, path, null, PrintOne("unbanned"), ct);
        });

        command.Subcommands.Add(list);
        command.Subcommands.Add(add);
        command.Subcommands.Add(remove);
        return command;
    }

    private static Option<string> AdminOption() =>
        new("--admin") { Description = "The gateway's admin URL (http://127.0.0.1:9443)", Required = true };

    private static async Task<int> RunAsync(string admin, HttpMethod method, string path, JsonObject? body, Action<JsonNode?> print, CancellationToken ct)
    {
        if (!Uri.TryCreate(admin.Contains("://", StringComparison.Ordinal) ? admin : "http://" + admin, UriKind.Absolute, out var baseUri)
            || baseUri.Scheme is not ("http" or "https"))
        {
            await Console.Error.WriteLineAsync($"portcullis: --admin \"{admin}\" is not a URL (http://127.0.0.1:9443)");
            return 2;
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var request = new HttpRequestMessage(method, new Uri(new Uri(baseUri.ToString().TrimEnd('/') + "/"), path));
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"portcullis: cannot reach the admin endpoint {baseUri}: {e.GetBaseException().Message}");
            return 2;
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            JsonNode? json = null;
            try
            {
                json = JsonNode.Parse(text);
            }
            catch (System.Text.Json.JsonException)
            {
            }
            if (!response.IsSuccessStatusCode)
            {
                var message = json?["error"]?.GetValue<string>() ?? $"HTTP {(int)response.StatusCode}";
                await Console.Error.WriteLineAsync($"portcullis: {baseUri}: {message}");
                return 1;
            }
            print(json);
            return 0;
        }
    }

    private static void PrintList(JsonNode? json)
    {
        var bans = json?["bans"]?.AsArray() ?? [];
        if (bans.Count == 0)
        {
            Console.Out.WriteLine("no bans in force");
            return;
        }
        Console.Out.WriteLine($"{"IP",-40} {"REASON",-14} {"FAILURES",8} {"EXPIRES",-20} COMMENT");
        foreach (var ban in bans)
        {
            Console.Out.WriteLine($"{Field(ban, "ip"),-40} {Field(ban, "reason"),-14} {Field(ban, "failures"),8} {Field(ban, "expiresAt"),-20} {Field(ban, "comment")}");
        }
    }

    private static Action<JsonNode?> PrintOne(string verb) => json =>
        Console.Out.WriteLine($"{verb} {Field(json, "ip")} ({Field(json, "reason")}, until {Field(json, "expiresAt")})");

    private static string Field(JsonNode? node, string name) => node?[name]?.ToString() ?? "";

}
