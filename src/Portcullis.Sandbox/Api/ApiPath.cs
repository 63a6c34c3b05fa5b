using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Api;

/// <summary>A request path under /api or /apis, split into what it addresses.</summary>
internal sealed record ApiPath(string ApiVersion, ResourceType? Type, string? Namespace, string? Name, string? Subresource, bool WatchPrefix)
{
    /// <summary>True for /api/v1 or /apis/group/version itself (the resource list).</summary>
    public bool IsGroupVersion => Type is null;

    /// <summary>
    /// Parses /api/v1/…, /apis/{group}/{version}/…, with an optional legacy /watch/ segment,
    /// namespaced (/namespaces/{ns}/{resource}/{name}/{sub}) or cluster-wide (/{resource}/{name}/{sub}).
    /// Returns null when the path names nothing the sandbox serves.
    /// </summary>
    public static ApiPath? Parse(string[] segments)
    {
        string apiVersion;
        int rest;
        if (segments.Length >= 2 && segments[0] == "api")
        {
            apiVersion = segments[1];
            rest = 2;
        }
        else if (segments.Length >= 3 && segments[0] == "apis")
        {
            apiVersion = segments[1] + "/" + segments[2];
            rest = 3;
        }
        else
        {
            return null;
        }
        if (!ResourceTypes.GroupVersions().Contains(apiVersion))
        {
            return null;
        }
        var parts = segments[rest..];
        if (parts.Length == 0)
        {
            return new ApiPath(apiVersion, null, null, null, null, false);
        }
        var watch = parts[0] == "watch";
        if (watch)
        {
            parts = parts[1..];
        }
        if (parts.Length >= 3 && parts[0] == "namespaces" && ResourceTypes.Find(apiVersion, parts[2]) is { Namespaced: true } namespaced)
        {
            return parts.Length > 5
                ? null
                : new ApiPath(apiVersion, namespaced, parts[1], parts.ElementAtOrDefault(3), parts.ElementAtOrDefault(4), watch);
        }
        if (parts.Length == 0 || parts.Length > 3 || ResourceTypes.Find(apiVersion, parts[0]) is not { } type)
        {
            return null;
        }
        return new ApiPath(apiVersion, type, null, parts.ElementAtOrDefault(1), parts.ElementAtOrDefault(2), watch);
    }
}
