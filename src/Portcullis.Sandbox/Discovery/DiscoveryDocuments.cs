using System.Text.Json.Nodes;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Discovery;

/// <summary>The legacy (non-aggregated) discovery documents and /version. kubectl falls back to these
/// when it asks for aggregated discovery and gets plain JSON.</summary>
internal static class DiscoveryDocuments
{
    /// <summary>The Kubernetes version the sandbox claims; the machine's kubectl dispatcher picks kubectl.1.32 from it.</summary>
    public const string GitVersion = "v1.32.4-sandbox";

    public static JsonObject Version() => new()
    {
        ["major"] = "1",
        ["minor"] = "32",
        ["gitVersion"] = GitVersion,
        ["gitCommit"] = "0000000000000000000000000000000000000000",
        ["gitTreeState"] = "clean",
        ["buildDate"] = "2025-01-01T00:00:00Z",
        ["goVersion"] = "go1.23.6",
        ["compiler"] = "gc",
        ["platform"] = "linux/amd64",
    };

    public static JsonObject ApiVersions(string serverAddress) => new()
    {
        ["kind"] = "APIVersions",
        ["versions"] = new JsonArray("v1"),
        ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject
        {
            ["clientCIDR"] = "0.0.0.0/0",
            ["serverAddress"] = serverAddress,
        }),
    };

    public static JsonObject ApiGroupList()
    {
        var groups = new JsonArray();
        foreach (var group in Groups())
        {
            groups.Add(ApiGroup(group, includeTypeMeta: false));
        }
        return new JsonObject { ["kind"] = "APIGroupList", ["apiVersion"] = "v1", ["groups"] = groups };
    }

    /// <summary>/apis/{group}; null when the group is not served.</summary>
    public static JsonObject? ApiGroup(string group) => Groups().Contains(group) ? ApiGroup(group, includeTypeMeta: true) : null;

    public static JsonObject ApiResourceList(string groupVersion)
    {
        var resources = new JsonArray();
        foreach (var type in ResourceTypes.All.Where(t => t.ApiVersion == groupVersion))
        {
            var shortNames = new JsonArray();
            foreach (var shortName in type.ShortNames)
            {
                shortNames.Add(shortName);
            }
            var verbs = new JsonArray();
            foreach (var verb in ResourceType.AllVerbs)
            {
                verbs.Add(verb);
            }
            var entry = new JsonObject
            {
                ["name"] = type.Resource,
                ["singularName"] = type.SingularName,
                ["namespaced"] = type.Namespaced,
                ["kind"] = type.Kind,
                ["verbs"] = verbs,
            };
            if (shortNames.Count > 0)
            {
                entry["shortNames"] = shortNames;
            }
            resources.Add(entry);
            if (type == ResourceTypes.Pods)
            {
                resources.Add(Subresource("pods/log", "Pod", "get"));
                resources.Add(Subresource("pods/exec", "PodExecOptions", "create", "get"));
                resources.Add(Subresource("pods/attach", "PodAttachOptions", "create", "get"));
                resources.Add(Subresource("pods/status", "Pod", "get", "patch", "update"));
            }
        }
        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = groupVersion,
            ["resources"] = resources,
        };
    }

    private static IEnumerable<string> Groups() =>
        ResourceTypes.All.Where(t => t.Group.Length > 0).Select(t => t.Group).Distinct();

    private static JsonObject ApiGroup(string group, bool includeTypeMeta)
    {
        var versions = new JsonArray();
        foreach (var version in ResourceTypes.All.Where(t => t.Group == group).Select(t => t.Version).Distinct())
        {
            versions.Add(new JsonObject { ["groupVersion"] = group + "/" + version, ["version"] = version });
        }
        var preferred = versions[0]!.DeepClone();
        var result = new JsonObject();
        if (includeTypeMeta)
        {
            result["kind"] = "APIGroup";
            result["apiVersion"] = "v1";
        }
        result["name"] = group;
        result["versions"] = versions;
        result["preferredVersion"] = preferred;
        return result;
    }

    private static JsonObject Subresource(string name, string kind, params string[] verbs)
    {
        var verbArray = new JsonArray();
        foreach (var verb in verbs)
        {
            verbArray.Add(verb);
        }
        return new JsonObject
        {
            ["name"] = name,
            ["singularName"] = "",
            ["namespaced"] = true,
            ["kind"] = kind,
            ["verbs"] = verbArray,
        };
    }
}
