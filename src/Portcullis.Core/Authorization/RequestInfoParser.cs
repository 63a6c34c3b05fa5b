using System.Diagnostics.CodeAnalysis;
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

        if (name.Length == 0 && verb == "get")
        {
            verb = IsWatchTrue(query) ? "watch" : "list";
        }
        if (name.Length == 0 && verb is "list" or "watch" && query.Length > 0)
        {
            var fromSelector = ExactMetadataName(QueryValue(query, "fieldSelector"));
            if (fromSelector is not null && IsValidPathSegmentName(fromSelector))
            {
                name = fromSelector;
            }
        }
        if (name.Length == 0 && verb == "delete")
        {
            verb = "deletecollection";
        }
        if (!verbFromPath && verb is "list" or "watch" or "deletecollection" && query.Length > 0)
        {
            fieldSelector = QueryValue(query, "fieldSelector") ?? "";
            labelSelector = QueryValue(query, "labelSelector") ?? "";
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
        var count = 1;
        for (var i = start; i < end; i++)
        {
            if (path[i] == '/')
            {
                count++;
            }
        }
        var parts = new string[count];
        var k = 0;
        var segmentStart = start;
        for (var i = start; i <= end; i++)
        {
            if (i == end || path[i] == '/')
            {
                parts[k++] = Intern(path, segmentStart, i - segmentStart);
                segmentStart = i + 1;
            }
        }
        return parts;
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

    private static bool IsWatchTrue(string query)
    {
        var value = QueryValue(query, "watch");
        if (value is null)
        {
            return false;
        }
        return !string.Equals(value, "0", StringComparison.Ordinal) && !string.Equals(value, "false", StringComparison.OrdinalIgnoreCase);
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
        var bytes = new byte[Encoding.UTF8.GetMaxByteCount(s.Length)];
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
                bytes[n++] = (byte)Convert.ToInt32(s.Slice(i + 1, 2).ToString(), 16);
                i += 2;
            }
            else if (c < 0x80)
            {
                bytes[n++] = (byte)c;
            }
            else
            {
                n += Encoding.UTF8.GetBytes(s.Slice(i, 1), bytes.AsSpan(n));
            }
        }
        return Encoding.UTF8.GetString(bytes, 0, n);
    }

    // fields.Selector.RequiresExactMatch("metadata.name"): a term "metadata.name=v" or "metadata.name==v".
    private static string? ExactMetadataName(string? selector)
    {
        if (string.IsNullOrEmpty(selector))
        {
            return null;
        }
        foreach (var raw in SplitTerms(selector))
        {
            var term = raw.Trim();
            const string key = "metadata.name";
            if (!term.StartsWith(key, StringComparison.Ordinal))
            {
                continue;
            }
            var op = term[key.Length..].TrimStart();
            if (op.StartsWith("==", StringComparison.Ordinal))
            {
                return Unescape(op[2..].Trim());
            }
            if (op.StartsWith('=') && !op.StartsWith("!=", StringComparison.Ordinal))
            {
                return Unescape(op[1..].Trim());
            }
        }
        return null;
    }

    // Field selector terms are separated by unescaped commas; '\' escapes ',', '=', '!' and '\' in values.
    private static IEnumerable<string> SplitTerms(string selector)
    {
        var start = 0;
        for (var i = 0; i < selector.Length; i++)
        {
            if (selector[i] == '\\')
            {
                i++;
            }
            else if (selector[i] == ',')
            {
                yield return selector[start..i];
                start = i + 1;
            }
        }
        yield return selector[start..];
    }

    private static string Unescape(string value)
    {
        if (!value.Contains('\\', StringComparison.Ordinal))
        {
            return value;
        }
        var sb = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length)
            {
                i++;
            }
            sb.Append(value[i]);
        }
        return sb.ToString();
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
