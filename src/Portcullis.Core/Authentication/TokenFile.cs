using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;

namespace Portcullis.Authentication;

/// <summary>
/// A <c>--token-auth-file</c>: RFC 4180 CSV rows <c>token,user,uid[,"group1,group2"]</c>. Empty tokens are skipped,
/// a duplicate token's last row wins, further columns are ignored. Lookups compare SHA-256 digests, so the table holds no token.
/// </summary>
public sealed class TokenFile
{
    private readonly FrozenDictionary<TokenDigest, UserInfo> _users;

    private TokenFile(FrozenDictionary<TokenDigest, UserInfo> users, string path)
    {
        _users = users;
        Path = path;
    }

    /// <summary>An empty table (no <c>tokenAuthFile</c> configured).</summary>
    public static TokenFile Empty { get; } = new(FrozenDictionary<TokenDigest, UserInfo>.Empty, "");

    /// <summary>The file this table was read from; the gateway watches it and calls <see cref="Load"/> again on change.</summary>
    public string Path { get; }

    public int Count => _users.Count;

    public static TokenFile Load(string path) => Parse(File.ReadAllText(path), path);

    public static TokenFile Parse(string text, string path)
    {
        var users = new Dictionary<TokenDigest, UserInfo>();
        var line = 0;
        foreach (var record in Csv.ReadRecords(text))
        {
            line++;
            if (record.Count == 1 && record[0].Length == 0)
            {
                continue; // blank line
            }
            if (record.Count < 3)
            {
                throw new FormatException($"token file '{path}' must have at least 3 columns (token, user name, user uid), found {record.Count} (record {line})");
            }
            if (record[0].Length == 0)
            {
                continue;
            }
            var groups = record.Count > 3 && record[3].Length > 0 ? record[3].Split(',') : [];
            users[TokenDigest.Of(record[0])] = UserInfo.Create(record[1], groups, record[2]);
        }
        return new TokenFile(users.ToFrozenDictionary(), path);
    }

    public UserInfo? Find(string token) => _users.GetValueOrDefault(TokenDigest.Of(token));

    /// <summary>Looks a token up by its digest, so the chain hashes each token once.</summary>
    public UserInfo? Find(TokenDigest digest) => _users.GetValueOrDefault(digest);

    /// <summary>Hex SHA-256 of a token: the only form in which a token is kept or shown.</summary>
    public static string Digest(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}

/// <summary>A minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF or LF), as Go's encoding/csv with variable fields.</summary>
public static class Csv
{
    public static IEnumerable<List<string>> ReadRecords(string text)
    {
        var field = new StringBuilder();
        var record = new List<string>();
        var i = 0;
        var quoted = false;
        var any = false;
        while (i < text.Length)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"')
                    {
                        field.Append('"');
                        i += 2;
                        continue;
                    }
                    quoted = false;
                    i++;
                    continue;
                }
                field.Append(c);
                i++;
                continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0:
                    quoted = true;
                    any = true;
                    break;
                case ',':
                    record.Add(field.ToString());
                    field.Clear();
                    any = true;
                    break;
                case '\r':
                    break;
                case '\n':
                    record.Add(field.ToString());
                    yield return record;
                    record = [];
                    field.Clear();
                    any = false;
                    break;
                default:
                    field.Append(c);
                    any = true;
                    break;
            }
            i++;
        }
        if (any || field.Length > 0 || record.Count > 0)
        {
            record.Add(field.ToString());
            yield return record;
        }
    }
}
