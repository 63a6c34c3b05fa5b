using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Portcullis.Configuration;
using Portcullis.Gateway.Pipeline;
using Portcullis.Network;

namespace Portcullis.Gateway.Admin;

/// <summary>
/// <c>GET /bans</c>, <c>POST /bans</c> (<c>{"ip": "…", "duration": "1h", "reason": "…"}</c>) and
/// <c>DELETE /bans/{ip}</c> on the admin listener. Errors are <c>{"error": "…"}</c> with 400 (a bad request), 404 (no
/// such ban) or 409 (<c>network.autoBan.enabled</c> is false).
/// </summary>
internal static class BanEndpoints
{
    private const int MaxBodyBytes = 16 * 1024;

    public static void Map(WebApplication admin, SourceBans bans)
    {
        admin.MapGet("/bans", () => bans.Banner is { } banner
            ? Json(new JsonObject { ["bans"] = new JsonArray([.. banner.ListBans().Select(ToJson)]) }, 200)
            : Disabled());
        admin.MapPost("/bans", async context =>
        {
            var result = bans.Banner is { } banner ? await AddAsync(context, banner) : Disabled();
            await result.ExecuteAsync(context);
        });
        admin.MapDelete("/bans/{ip}", (string ip, string? reason) =>
        {
            if (bans.Banner is not { } banner)
            {
                return Disabled();
            }
            if (!IPAddress.TryParse(ip, out var address))
            {
                return Error(400, $"\"{ip}\" is not an IP address");
            }
            return banner.Unban(address, reason) is { } lifted
                ? Json(ToJson(lifted), 200)
                : Error(404, $"{address} is not banned");
        });
    }

    private static async Task<IResult> AddAsync(HttpContext context, AutoBanner banner)
    {
        JsonObject? body;
        try
        {
            using var limited = new MemoryStream();
            await context.Request.Body.CopyToAsync(limited, context.RequestAborted);
            if (limited.Length > MaxBodyBytes)
            {
                return Error(413, $"the body is over {MaxBodyBytes} bytes");
            }
            body = JsonNode.Parse(limited.ToArray()) as JsonObject;
        }
        catch (JsonException e)
        {
            return Error(400, $"the body is not JSON: {e.Message}");
        }
        if (body is null)
        {
            return Error(400, "the body must be a JSON object {\"ip\": \"…\", \"duration\": \"1h\", \"reason\": \"…\"}");
        }
        if (body["ip"] is not JsonValue ipValue || !ipValue.TryGetValue<string>(out var ip) || !IPAddress.TryParse(ip, out var address))
        {
            return Error(400, "ip: must be an IP address");
        }
        TimeSpan? duration = null;
        if (body["duration"] is { } durationNode)
        {
            if (durationNode is not JsonValue dv || !dv.TryGetValue<string>(out var text) || !GoDuration.TryParse(text, out var parsed) || parsed <= TimeSpan.Zero)
            {
                return Error(400, "duration: must be a positive duration (30m, 1h, 24h)");
            }
            duration = parsed;
        }
        string? reason = null;
        if (body["reason"] is { } reasonNode && (reasonNode is not JsonValue rv || !rv.TryGetValue(out reason)))
        {
            return Error(400, "reason: must be a string");
        }
        try
        {
            return Json(ToJson(banner.Ban(address, duration, reason)), 201);
        }
        catch (ArgumentException e)
        {
            return Error(400, e.Message[..(e.Message.IndexOf(" (Parameter", StringComparison.Ordinal) is var cut and > 0 ? cut : e.Message.Length)]);
        }
    }

    private static JsonObject ToJson(BanEntry ban) => new()
    {
        ["ip"] = ban.Address.ToString(),
        ["reason"] = SourceBans.Label(ban.Reason),
        ["failures"] = ban.Failures,
        ["level"] = ban.Level,
        ["duration"] = GoDuration.Format(ban.Duration),
        ["bannedAt"] = ban.BannedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        ["expiresAt"] = ban.ExpiresAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        ["comment"] = ban.Comment,
    };

    private static IResult Disabled() => Error(409, "auto-ban is off: set network.autoBan.enabled: true and restart the gateway");

    private static IResult Error(int status, string message) => Json(new JsonObject { ["error"] = message }, status);

    private static IResult Json(JsonNode node, int status) =>
        Results.Text(node.ToJsonString() + "\n", "application/json", statusCode: status);
}
