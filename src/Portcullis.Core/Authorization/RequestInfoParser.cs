using System.Net;

namespace Portcullis.Authorization;

/// <summary>
/// Computes <see cref="RequestInfo"/> exactly as kube-apiserver's RequestInfoFactory does: the percent-decoded path is
/// split on '/', verbs come from the method or a <c>watch</c>/<c>proxy</c> path prefix, <c>?watch</c> turns list into watch,
/// and a <c>metadata.name</c> field selector fills the name.
/// </summary>
public static class RequestInfoParser
{
    /// <summary>Parses a request. <paramref name="rawPath"/> is the path as sent (percent-encoded); <paramref name="query"/> excludes '?'.</summary>
    public static RequestInfo Parse(string method, string rawPath, string query)
    {
        var path = DecodePath(rawPath);
        var verb = method.ToLowerInvariant();
        var parts = Split(path);

        if (parts.Length < 3 || parts[0] is not ("api" or "apis"))
        {
            return new RequestInfo { Path = path, Verb = verb };
        }
        var index = 0;
        var prefix = parts[index++];
        var group = "";
        if (prefix == "apis")
        {
            if (parts.Length < 4)
            {
                return new RequestInfo { Path = path, Verb = verb };
            }
            group = parts[index++];
        }
        var version = parts[index++];
        var verbFromPath = false;

        if (parts[index] is "proxy" or "watch")
        {
            if (parts.Length - index < 2)
            {
                throw new RequestInfoException($"unable to determine kind and namespace from url, {rawPath}");
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

        var rest = parts[index..];
        var resource = rest.Length > 0 ? rest[0] : "";
        var name = rest.Length > 1 ? rest[1] : "";
        var subresource = rest.Length > 2 && verb != "proxy" ? rest[2] : "";
        var fieldSelector = "";
        var labelSelector = "";

        if (name.Length == 0 && verb == "get")
        {
            verb = IsWatchTrue(query) ? "watch" : "list";
        }
        if (verb is "list" or "watch" && name.Length == 0)
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
        if (!verbFromPath && verb is "list" or "watch" or "deletecollection")
        {
            fieldSelector = QueryValue(query, "fieldSelector") ?? "";
            labelSelector = QueryValue(query, "labelSelector") ?? "";
        }

        return new RequestInfo
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
    }

    /// <summary>Percent-decodes a path as Go's url.URL.Path does (so %2F becomes a separator). '+' stays '+'.</summary>
    public static string DecodePath(string rawPath) =>
        rawPath.Contains('%', StringComparison.Ordinal) ? WebUtility.UrlDecode(rawPath.Replace("+", "%2B", StringComparison.Ordinal)) : rawPath;

    private static string[] Split(string path)
    {
        var trimmed = path.Trim('/');
        return trimmed.Length == 0 ? [] : trimmed.Split('/');
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

    /// <summary>The first value of a query parameter (decoded as Go's url.ParseQuery does), or null when absent.</summary>
    public static string? QueryValue(string query, string key)
    {
        foreach (var pair in query.TrimStart('?').Split('&'))
        {
            if (pair.Length == 0)
            {
                continue;
            }
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var k = Decode(eq < 0 ? pair : pair[..eq]);
            if (k == key)
            {
                return eq < 0 ? "" : Decode(pair[(eq + 1)..]);
            }
        }
        return null;
    }

    private static string Decode(string s) => WebUtility.UrlDecode(s);

    // fields.Selector.RequiresExactMatch("metadata.name"): a term "metadata.name=v" or "metadata.name==v".
    private static string? ExactMetadataName(string? selector)
    {
        if (string.IsNullOrEmpty(selector))
        {
            return null;
        }
        foreach (var raw in selector.Split(','))
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
                return op[2..].Trim();
            }
            if (op.StartsWith('=') )
            {
                return op[1..].Trim();
            }
        }
        return null;
    }

    private static bool IsValidPathSegmentName(string name) =>
        name is not ("." or "..") && !name.Contains('/', StringComparison.Ordinal) && !name.Contains('%', StringComparison.Ordinal);
}

/// <summary>kube-apiserver answers this with 500 "failed to create RequestInfo".</summary>
public sealed class RequestInfoException(string message) : Exception(message);
