using System.Net;
using System.Text.Json;

namespace Portcullis.Network;

/// <summary>
/// The ban state file: <c>{"version":1,"bans":[{"address","reason","failures","level","bannedAt","expiresAt","comment"}]}</c>,
/// written whole to a temporary file beside it and renamed over it, so a reader sees the old or the new file, never half.
/// </summary>
internal static class BanStateFile
{
    public const int Version = 1;

    public static void Write(string path, IReadOnlyCollection<BanEntry> bans)
    {
        var full = Path.GetFullPath(path);
        var temp = full + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
                {
                    json.WriteStartObject();
                    json.WriteNumber("version", Version);
                    json.WriteStartArray("bans");
                    foreach (var ban in bans)
                    {
                        json.WriteStartObject();
                        json.WriteString("address", ban.Address.ToString());
                        json.WriteString("reason", Name(ban.Reason));
                        json.WriteNumber("failures", ban.Failures);
                        json.WriteNumber("level", ban.Level);
                        json.WriteString("bannedAt", ban.BannedAt.ToUniversalTime());
                        json.WriteString("expiresAt", ban.ExpiresAt.ToUniversalTime());
                        if (ban.Comment is not null)
                        {
                            json.WriteString("comment", ban.Comment);
                        }
                        json.WriteEndObject();
                    }
                    json.WriteEndArray();
                    json.WriteEndObject();
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new AutoBanStateException($"{path}: the ban state file cannot be written: {e.Message}", e);
        }
    }

    /// <summary>Reads the file; a missing file is an empty state. Anything else that is not a valid state file is an error naming it.</summary>
    public static List<BanEntry> Read(string path)
    {
        byte[] bytes;
        try
        {
            if (!File.Exists(path))
            {
                return [];
            }
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AutoBanStateException($"{path}: the ban state file cannot be read: {e.Message}", e);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            var line = (e.LineNumber ?? 0) + 1;
            var message = e.Message;
            var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            throw new AutoBanStateException($"{path}:{line}: the ban state file is not valid JSON: {(cut > 0 ? message[..cut] : message)}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(path, "(root)", "must be an object with \"version\" and \"bans\"");
            }
            if (!root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out var v) || v != Version)
            {
                throw Invalid(path, "version", $"must be {Version}");
            }
            if (!root.TryGetProperty("bans", out var list) || list.ValueKind != JsonValueKind.Array)
            {
                throw Invalid(path, "bans", "must be an array");
            }
            var bans = new List<BanEntry>();
            var index = 0;
            foreach (var item in list.EnumerateArray())
            {
                bans.Add(ReadBan(path, $"bans[{index}]", item));
                index++;
            }
            return bans;
        }
    }

    private static BanEntry ReadBan(string path, string where, JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(path, where, "must be an object");
        }
        var addressText = String(path, where, item, "address");
        if (!IPAddress.TryParse(addressText, out var address))
        {
            throw Invalid(path, where + ".address", $"\"{addressText}\" is not an IP address");
        }
        var reasonText = String(path, where, item, "reason");
        if (!TryParseReason(reasonText, out var reason))
        {
            throw Invalid(path, where + ".reason", $"\"{reasonText}\" is not one of authentication, authorization, manual");
        }
        var failures = Integer(path, where, item, "failures");
        var level = Integer(path, where, item, "level");
        var bannedAt = Time(path, where, item, "bannedAt");
        var expiresAt = Time(path, where, item, "expiresAt");
        if (expiresAt < bannedAt)
        {
            throw Invalid(path, where + ".expiresAt", "is before bannedAt");
        }
        string? comment = null;
        if (item.TryGetProperty("comment", out var c))
        {
            comment = c.ValueKind switch
            {
                JsonValueKind.String => c.GetString(),
                JsonValueKind.Null => null,
                _ => throw Invalid(path, where + ".comment", "must be a string"),
            };
        }
        return new BanEntry(Cidr.Normalize(address), reason, failures, level, bannedAt, expiresAt, comment);
    }

    private static string String(string path, string where, JsonElement item, string name) =>
        item.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw Invalid(path, $"{where}.{name}", "must be a string");

    private static int Integer(string path, string where, JsonElement item, string name) =>
        item.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) && n >= 0
            ? n
            : throw Invalid(path, $"{where}.{name}", "must be a whole number, 0 or more");

    private static DateTimeOffset Time(string path, string where, JsonElement item, string name) =>
        item.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.TryGetDateTimeOffset(out var t)
            ? t
            : throw Invalid(path, $"{where}.{name}", "must be an RFC 3339 time such as 2026-01-02T03:04:05Z");

    private static AutoBanStateException Invalid(string path, string field, string problem) =>
        new($"{path}: {field}: {problem} (the ban state file is corrupt; fix or remove it)");

    public static string Name(BanReason reason) => reason switch
    {
        BanReason.Authentication => "authentication",
        BanReason.Authorization => "authorization",
        _ => "manual",
    };

    private static bool TryParseReason(string text, out BanReason reason)
    {
        reason = text switch
        {
            "authentication" => BanReason.Authentication,
            "authorization" => BanReason.Authorization,
            "manual" => BanReason.Manual,
            _ => (BanReason)(-1),
        };
        return reason >= 0;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The rename failed or never happened; a stray temporary file is harmless.
        }
    }
}
