using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;

namespace Portcullis.Authorization;

/// <summary>
/// Computes <see cref="RequestInfo"/> exactly as kube-apiserver's RequestInfoFactory does (spec §1): the percent-decoded
/// path is split on '/', verbs come from the method or a <c>watch</c>/<c>proxy</c> path prefix, <c>?watch</c> turns list
/// into watch, and a <c>metadata.name</c> field selector fills the name. Non-canonical paths are refused first by
/// <see cref="PathGuard"/>.
/// </summary>
public static class RequestInfoParser
{
    /// <summary>
    /// Parses a request. <paramref name="rawPath"/> is the path as sent (percent-encoded, before '?');
    /// <paramref name="query"/> is the raw query without '?'. On failure <paramref name="error"/> says whether the gateway
    /// answers 400 (non-canonical path) or 500 (as kube-apiserver does for <c>/api/v1/watch</c> without a resource).
    /// </summary>
    public static bool TryParse(string method, string rawPath, string query,
        [NotNullWhen(true)] out RequestInfo? info, out RequestInfoError error)
    {
        info = null;
        error = default;
        var guard = PathGuard.Check(rawPath, out var path);
        if (guard is not null)
        {
            error = new RequestInfoError(400, guard);
            return false;
        }
        var verb = LowerMethod(method);
        var parts = Split(path);

        if (parts.Length < 3 || parts[0] is not ("api" or "apis"))
        {
            info = new RequestInfo { Path = path, Verb = verb };
            return true;
        }
        var index = 0;
        var prefix = parts[index++];
        var group = "";
        if (prefix.Length == 4)
        {
            if (parts.Length < 4)
            {
                info = new RequestInfo { Path = path, Verb = verb };
                return true;
            }
            group = parts[index++];
        }
        var version = parts[index++];
        var verbFromPath = false;

        if (parts[index] is "proxy" or "watch")
        {
            if (parts.Length - index < 2)
            {
                error = new RequestInfoError(500, $"failed to create RequestInfo: unable to determine kind and namespace from url, {rawPath}");
                return false;
            }
            verb = parts[index++];
            verbFromPath = true;
        }
        else
        {
            verb = method switch
            {
                "POST" => "create",
                "GET" or "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            };
        }

        var ns = "";
        if (parts[index] == "namespaces")
        {
            if (parts.Length - index > 1)
            {
                ns = parts[index + 1];
                if (parts.Length - index > 2 && parts[index + 2] is not ("status" or "finalize"))
                {
                    index += 2;
                }
            }
        }

        var rest = index == 0 ? parts : parts[index..];
        var resource = rest.Length > 0 ? rest[0] : "";
        var name = rest.Length > 1 ? rest[1] : "";
        var subresource = rest.Length > 2 && verb != "proxy" ? rest[2] : "";
        var fieldSelector = "";
        var labelSelector = "";

        var q = query.Length > 0 && (name.Length == 0 || verb is "list" or "watch" or "deletecollection") ? ScanQuery(query) : default;
        if (name.Length == 0 && verb == "get")
        {
            // kube-apiserver decodes the query into ListOptions; when that fails it falls back to a looser watch test
            // and ignores the field selector (so no name comes from it).
            var terms = q.FieldSelector is null ? null : Selectors.FieldSelectorParser.Parse(q.FieldSelector, out _);
            var decoded = IsInteger(q.Limit) && IsInteger(q.TimeoutSeconds) && (q.FieldSelector is null || terms is not null);
            verb = IsWatch(q.Watch, decoded) ? "watch" : "list";
            if (decoded && terms is not null && ExactMetadataName(terms) is { } fromSelector && IsValidPathSegmentName(fromSelector))
            {
                name = fromSelector;
            }
        }
        if (name.Length == 0 && verb == "delete")
        {
            verb = "deletecollection";
        }
        if (!verbFromPath && verb is "list" or "watch" or "deletecollection")
        {
            fieldSelector = q.FieldSelector ?? "";
            labelSelector = q.LabelSelector ?? "";
        }

        info = new RequestInfo
        {
            IsResourceRequest = true,
            Path = path,
            Verb = verb,
            ApiPrefix = prefix,
            ApiGroup = group,
            ApiVersion = version,
            Namespace = ns,
            Resource = resource,
            Subresource = subresource,
            Name = name,
            Parts = rest,
            FieldSelector = fieldSelector,
            LabelSelector = labelSelector,
        };
        return true;
    }

    /// <summary>Parses or throws <see cref="RequestInfoException"/> carrying the status code (400 or 500).</summary>
    public static RequestInfo Parse(string method, string rawPath, string query) =>
        TryParse(method, rawPath, query, out var info, out var error) ? info : throw new RequestInfoException(error.StatusCode, error.Message);

    /// <summary>A resource or non-resource request built from attributes (for checks such as impersonation or explain).</summary>
    public static RequestInfo Resource(string verb, string group, string resource, string subresource = "", string ns = "", string name = "") =>
        new()
        {
            IsResourceRequest = true,
            Verb = verb,
            ApiPrefix = group.Length == 0 ? "api" : "apis",
            ApiGroup = group,
            Namespace = ns,
            Resource = resource,
            Subresource = subresource,
            Name = name,
        };

    /// <summary>A non-resource request for <paramref name="path"/> with <paramref name="verb"/>.</summary>
    public static RequestInfo NonResource(string verb, string path) => new() { Verb = verb, Path = path };

    private static string LowerMethod(string method) => method switch
    {
        "GET" => "get",
        "POST" => "post",
        "PUT" => "put",
        "PATCH" => "patch",
        "DELETE" => "delete",
        "HEAD" => "head",
        "OPTIONS" => "options",
        _ => method.ToLowerInvariant(),
    };

    private static string[] Split(string path)
    {
        var start = 0;
        var end = path.Length;
        while (start < end && path[start] == '/')
        {
            start++;
        }
        while (end > start && path[end - 1] == '/')
        {
            end--;
        }
        if (start == end)
        {
            return [];
        }
        var parts = new string[path.AsSpan(start, end - start).Count('/') + 1];
        var k = 0;
        var segmentStart = start;
        while (true)
        {
            var slash = path.AsSpan(segmentStart, end - segmentStart).IndexOf('/');
            if (slash < 0)
            {
                parts[k] = Intern(path, segmentStart, end - segmentStart);
                return parts;
            }
            parts[k++] = Intern(path, segmentStart, slash);
            segmentStart += slash + 1;
        }
    }

    // The words every request repeats are returned as literals so a typical parse allocates only names.
    private static string Intern(string path, int start, int length)
    {
        var s = path.AsSpan(start, length);
        return s switch
        {
            "api" => "api",
            "apis" => "apis",
            "v1" => "v1",
            "namespaces" => "namespaces",
            "pods" => "pods",
            "watch" => "watch",
            "proxy" => "proxy",
            "status" => "status",
            "log" => "log",
            "exec" => "exec",
            "apps" => "apps",
            "deployments" => "deployments",
            "services" => "services",
            "configmaps" => "configmaps",
            "secrets" => "secrets",
            "default" => "default",
            _ => path.Substring(start, length),
        };
    }

    // runtime.Convert_Slice_string_To_bool: "0", "f", "false" (any case) are false, anything else (even "") true.
    // In the fallback after a decoding error only "0" and "false" (any case) are false.
    private static bool IsWatch(string? value, bool decoded)
    {
        if (value is null)
        {
            return false;
        }
        var isFalse = value == "0" || value.Equals("false", StringComparison.OrdinalIgnoreCase)
            || (decoded && value.Equals("f", StringComparison.OrdinalIgnoreCase));
        return !isFalse;
    }

    // Integer ListOptions (limit, timeoutSeconds) must parse, else decoding fails. Label-selector syntax is not checked
    // (kube-apiserver refuses such a request with 400 anyway, so no decision can differ in what it lets through).
    private static bool IsInteger(string? value) =>
        value is null || long.TryParse(value, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _);

    /// <summary>The query parameters RequestInfo reads: first valid value of each (Go's url.ParseQuery rules).</summary>
    private struct ListQuery
    {
        public string? Watch;
        public string? Limit;
        public string? TimeoutSeconds;
        public string? FieldSelector;
        public string? LabelSelector;
    }

    // One pass over the query; only the five interesting keys are decoded.
    private static ListQuery ScanQuery(string query)
    {
        var result = default(ListQuery);
        var i = query.Length > 0 && query[0] == '?' ? 1 : 0;
        while (i < query.Length)
        {
            var amp = query.IndexOf('&', i);
            if (amp < 0)
            {
                amp = query.Length;
            }
            var pair = query.AsSpan(i, amp - i);
            i = amp + 1;
            if (pair.Length == 0 || pair.Contains(';'))
            {
                continue;
            }
            var eq = pair.IndexOf('=');
            var key = eq < 0 ? pair : pair[..eq];
            var raw = eq < 0 ? [] : pair[(eq + 1)..];
            if (key.IndexOfAny('%', '+') >= 0)
            {
                var decodedKey = QueryUnescape(key);
                if (decodedKey is null)
                {
                    continue;
                }
                key = decodedKey;
            }
            ref var slot = ref SlotFor(ref result, key);
            if (Unsafe.IsNullRef(ref slot) || slot is not null)
            {
                continue;
            }
            slot = raw switch
            {
                "true" => "true",
                "1" => "1",
                "false" => "false",
                "0" => "0",
                "" => "",
                _ => QueryUnescape(raw),
            };
        }
        return result;
    }

    private static ref string? SlotFor(ref ListQuery q, ReadOnlySpan<char> key)
    {
        switch (key)
        {
            case "watch": return ref q.Watch;
            case "limit": return ref q.Limit;
            case "timeoutSeconds": return ref q.TimeoutSeconds;
            case "fieldSelector": return ref q.FieldSelector;
            case "labelSelector": return ref q.LabelSelector;
            default: return ref Unsafe.NullRef<string?>();
        }
    }

    /// <summary>
    /// The first value of a query parameter, decoded as Go's <c>url.ParseQuery</c> does: pairs containing ';' or a
    /// malformed escape are skipped (kube-apiserver ignores them the same way), '+' is a space. Null when absent.
    /// </summary>
    public static string? QueryValue(string query, string key)
    {
        var q = query.AsSpan();
        if (q.Length > 0 && q[0] == '?')
        {
            q = q[1..];
        }
        while (q.Length > 0)
        {
            var amp = q.IndexOf('&');
            var pair = amp < 0 ? q : q[..amp];
            q = amp < 0 ? [] : q[(amp + 1)..];
            if (pair.Length == 0 || pair.Contains(';'))
            {
                continue;
            }
            var eq = pair.IndexOf('=');
            var k = eq < 0 ? pair : pair[..eq];
            var v = eq < 0 ? [] : pair[(eq + 1)..];
            var decodedKey = QueryUnescape(k);
            if (decodedKey is null || decodedKey != key)
            {
                continue;
            }
            var decodedValue = QueryUnescape(v);
            if (decodedValue is null)
            {
                continue;
            }
            return decodedValue;
        }
        return null;
    }

    private static string? QueryUnescape(ReadOnlySpan<char> s)
    {
        if (s.IndexOfAny('%', '+') < 0)
        {
            return s.ToString();
        }
        var max = Encoding.UTF8.GetMaxByteCount(s.Length);
        Span<byte> bytes = max <= 512 ? stackalloc byte[512] : new byte[max];
        var n = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '+')
            {
                bytes[n++] = (byte)' ';
            }
            else if (c == '%')
            {
                if (i + 2 >= s.Length || !char.IsAsciiHexDigit(s[i + 1]) || !char.IsAsciiHexDigit(s[i + 2]))
                {
                    return null;
                }
                bytes[n++] = (byte)((HexValue(s[i + 1]) << 4) | HexValue(s[i + 2]));
                i += 2;
            }
            else if (c < 0x80)
            {
                bytes[n++] = (byte)c;
            }
            else
            {
                var length = char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
                n += Encoding.UTF8.GetBytes(s.Slice(i, length), bytes[n..]);
                i += length - 1;
            }
        }
        return Encoding.UTF8.GetString(bytes[..n]);
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    // fields.Selector.RequiresExactMatch("metadata.name") on a parsed selector: terms sorted, the first
    // "metadata.name=" or "metadata.name==" term wins; no whitespace trimming (as Go).
    private static string? ExactMetadataName(IReadOnlyList<Selectors.SelectorRequirement> terms)
    {
        foreach (var term in terms)
        {
            if (term.Key == "metadata.name" && term.Operator == "=")
            {
                return term.Values[0];
            }
        }
        return null;
    }

    private static bool IsValidPathSegmentName(string name) =>
        name is not ("." or "..") && !name.Contains('/', StringComparison.Ordinal) && !name.Contains('%', StringComparison.Ordinal);
}

/// <summary>Why a request could not be classified: 400 for a refused path, 500 as kube-apiserver answers.</summary>
public readonly record struct RequestInfoError(int StatusCode, string Message);

/// <summary>Thrown by <see cref="RequestInfoParser.Parse"/>; <see cref="StatusCode"/> is 400 or 500.</summary>
public sealed class RequestInfoException(int statusCode, string message) : Exception(message)
{
    public int StatusCode { get; } = statusCode;
}
