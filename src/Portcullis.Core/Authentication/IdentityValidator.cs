using System.Globalization;

namespace Portcullis.Authentication;

/// <summary>
/// Decides whether an identity can be written on the wire unchanged. A user name, uid, group, extra key or extra value
/// becomes an HTTP header value towards the upstream (<c>Impersonate-User</c>, <c>X-Remote-Group</c>, …), and those
/// strings come from places a client can influence: a CSR signer's CN and O, OIDC claims and CEL mappings, a webhook's
/// answer, a token file row, <c>kubectl --as</c>. So a string is refused when it holds
/// <list type="bullet">
/// <item>a control character (<see cref="char.IsControl(char)"/>: C0 including TAB, DEL, C1): CR/LF would end the
/// header line and let the identity add headers or a whole request;</item>
/// <item>a lone UTF-16 surrogate, which does not survive UTF-8 encoding unchanged;</item>
/// <item>leading or trailing whitespace, which an HTTP parser trims as optional whitespace around a header value
/// (<c>"admin "</c> would reach the upstream as <c>admin</c>): the identity the gateway authorized must be byte for byte
/// the one the upstream sees.</item>
/// </list>
/// The messages name the field and the kind of character, never the value (a value may be a secret a client put there).
/// </summary>
public static class IdentityValidator
{
    /// <summary>Extra keys longer than this are not quoted in messages.</summary>
    private const int MaxQuotedKeyLength = 100;

    /// <summary>
    /// Null when every string of <paramref name="user"/> is safe to forward; otherwise what is wrong, e.g.
    /// <c>user name contains a control character (U+000D)</c> or <c>group 2 ends with whitespace (U+0020)</c>.
    /// </summary>
    public static string? Validate(UserInfo user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (Check(user.Name) is { } name)
        {
            return "user name " + name;
        }
        if (Check(user.Uid) is { } uid)
        {
            return "uid " + uid;
        }
        var groups = user.Groups;
        for (var i = 0; i < groups.Count; i++)
        {
            if (Check(groups[i]) is { } group)
            {
                return string.Create(CultureInfo.InvariantCulture, $"group {i + 1} {group}");
            }
        }
        if (user.Extra.Count > 0)
        {
            foreach (var (key, values) in user.Extra)
            {
                if (Check(key) is { } badKey)
                {
                    return "an extra key " + badKey;
                }
                for (var i = 0; i < values.Count; i++)
                {
                    if (Check(values[i]) is { } value)
                    {
                        return string.Create(CultureInfo.InvariantCulture, $"value {i + 1} of extra {DescribeKey(key)} {value}");
                    }
                }
            }
        }
        return null;
    }

    /// <summary>
    /// Null when <paramref name="value"/> is safe to forward as a header value; otherwise the kind of problem, as the
    /// end of a sentence whose subject the caller names: <c>contains a control character (U+000A)</c>,
    /// <c>contains a lone surrogate (U+D800)</c>, <c>begins with whitespace (U+0020)</c>, <c>ends with whitespace (U+00A0)</c>.
    /// </summary>
    public static string? Check(ReadOnlySpan<char> value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsControl(c))
            {
                return "contains a control character (" + CodePoint(c) + ")";
            }
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                {
                    i++;
                    continue;
                }
                return "contains a lone surrogate (" + CodePoint(c) + ")";
            }
            if (char.IsLowSurrogate(c))
            {
                return "contains a lone surrogate (" + CodePoint(c) + ")";
            }
        }
        if (value.Length > 0 && char.IsWhiteSpace(value[0]))
        {
            return "begins with whitespace (" + CodePoint(value[0]) + ")";
        }
        if (value.Length > 0 && char.IsWhiteSpace(value[^1]))
        {
            return "ends with whitespace (" + CodePoint(value[^1]) + ")";
        }
        return null;
    }

    private static string CodePoint(char c) => "U+" + ((int)c).ToString("X4", CultureInfo.InvariantCulture);

    // A key already checked is printable (keys name a kind of value, not a secret); a very long one is cut, never
    // between the two halves of a surrogate pair.
    private static string DescribeKey(string key)
    {
        if (key.Length <= MaxQuotedKeyLength)
        {
            return "\"" + key + "\"";
        }
        var cut = char.IsHighSurrogate(key[MaxQuotedKeyLength - 1]) ? MaxQuotedKeyLength - 1 : MaxQuotedKeyLength;
        return "\"" + key[..cut] + "…\"";
    }
}
