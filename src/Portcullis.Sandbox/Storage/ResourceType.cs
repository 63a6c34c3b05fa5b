using System.Collections.Frozen;

namespace Portcullis.Sandbox.Storage;

/// <summary>One kind of object the sandbox stores, described the way discovery describes it.</summary>
public sealed record ResourceType(
    string Group,
    string Version,
    string Resource,
    string Kind,
    bool Namespaced,
    string[] ShortNames)
{
    /// <summary>The verbs every stored resource supports.</summary>
    public static readonly string[] AllVerbs =
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

    /// <summary>
    /// Whether a DELETE answers with the deleted object (kube-apiserver's registry <c>ReturnDeletedObject: true</c>:
    /// namespaces, pods, service accounts) rather than a <c>Status</c> of <c>Success</c> naming it (every other type).
    /// </summary>
    public bool ReturnsDeletedObject { get; init; }

    /// <summary>"v1" for the core group, "group/version" otherwise.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : Group + "/" + Version;

    /// <summary>The list kind, e.g. PodList.</summary>
    public string ListKind => Kind + "List";

    /// <summary>The name used in Status messages: "pods" or "deployments.apps".</summary>
    public string QualifiedResource => Group.Length == 0 ? Resource : Resource + "." + Group;

    /// <summary>The singular lower-case name used in discovery.</summary>
    public string SingularName => Kind.ToLowerInvariant();
}

/// <summary>The fixed set of resources the sandbox serves.</summary>
public static class ResourceTypes
{
    /// <summary>core/v1 Namespace.</summary>
    public static readonly ResourceType Namespaces = new("", "v1", "namespaces", "Namespace", false, ["ns"]) { ReturnsDeletedObject = true };
    /// <summary>core/v1 Pod.</summary>
    public static readonly ResourceType Pods = new("", "v1", "pods", "Pod", true, ["po"]) { ReturnsDeletedObject = true };
    /// <summary>core/v1 ConfigMap.</summary>
    public static readonly ResourceType ConfigMaps = new("", "v1", "configmaps", "ConfigMap", true, ["cm"]);
    /// <summary>core/v1 Secret.</summary>
    public static readonly ResourceType Secrets = new("", "v1", "secrets", "Secret", true, []);
    /// <summary>core/v1 ServiceAccount.</summary>
    public static readonly ResourceType ServiceAccounts = new("", "v1", "serviceaccounts", "ServiceAccount", true, ["sa"]) { ReturnsDeletedObject = true };
    /// <summary>core/v1 Event.</summary>
    public static readonly ResourceType Events = new("", "v1", "events", "Event", true, ["ev"]);
    /// <summary>coordination.k8s.io/v1 Lease.</summary>
    public static readonly ResourceType Leases = new("coordination.k8s.io", "v1", "leases", "Lease", true, []);
    /// <summary>apps/v1 Deployment.</summary>
    public static readonly ResourceType Deployments = new("apps", "v1", "deployments", "Deployment", true, ["deploy"]);

    /// <summary>Every resource, in discovery order.</summary>
    public static readonly IReadOnlyList<ResourceType> All =
        [Namespaces, Pods, ConfigMaps, Secrets, ServiceAccounts, Events, Leases, Deployments];

    private static readonly FrozenDictionary<string, ResourceType> ByPath =
        All.ToFrozenDictionary(r => r.ApiVersion + "/" + r.Resource, StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, ResourceType> ByKind =
        All.ToFrozenDictionary(r => r.ApiVersion + "/" + r.Kind, StringComparer.Ordinal);

    /// <summary>Finds a resource by group/version and plural name.</summary>
    public static ResourceType? Find(string apiVersion, string resource) =>
        ByPath.GetValueOrDefault(apiVersion + "/" + resource);

    /// <summary>Finds a resource by apiVersion and kind, as written in an object.</summary>
    public static ResourceType? FindByKind(string apiVersion, string kind) =>
        ByKind.GetValueOrDefault(apiVersion + "/" + kind);

    /// <summary>The group/versions served, in discovery order ("v1" first).</summary>
    public static IEnumerable<string> GroupVersions() => All.Select(r => r.ApiVersion).Distinct();
}
