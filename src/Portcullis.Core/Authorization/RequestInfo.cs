namespace Portcullis.Authorization;

/// <summary>
/// The attributes kube-apiserver derives from a request's method and decoded path (k8s.io/apiserver RequestInfo).
/// Built once per request by <see cref="RequestInfoParser"/>.
/// </summary>
public sealed record RequestInfo
{
    public bool IsResourceRequest { get; init; }
    /// <summary>The decoded URL path.</summary>
    public string Path { get; init; } = "";
    /// <summary>Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection, proxy, or "" for unknown methods.</summary>
    public string Verb { get; init; } = "";
    public string ApiPrefix { get; init; } = "";
    public string ApiGroup { get; init; } = "";
    public string ApiVersion { get; init; } = "";
    public string Namespace { get; init; } = "";
    public string Resource { get; init; } = "";
    public string Subresource { get; init; } = "";
    public string Name { get; init; } = "";
    public IReadOnlyList<string> Parts { get; init; } = [];
    /// <summary>Raw fieldSelector / labelSelector for list, watch and deletecollection.</summary>
    public string FieldSelector { get; init; } = "";
    public string LabelSelector { get; init; } = "";

    private static readonly HashSet<string> LongRunningSubresources = ["attach", "exec", "proxy", "log", "portforward"];

    /// <summary>kube-apiserver's long-running check: no request timeout, no max-in-flight.</summary>
    public bool IsLongRunning =>
        Verb is "watch" or "proxy"
        || (IsResourceRequest && LongRunningSubresources.Contains(Subresource))
        || (!IsResourceRequest && Path.StartsWith("/debug/pprof/", StringComparison.Ordinal));

    /// <summary>True for verbs that change state (used by max-in-flight and metrics).</summary>
    public bool IsMutating => Verb is not ("get" or "list" or "watch" or "");
}
