using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Portcullis.Authorization;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// <c>apiserver_request_total</c> and <c>apiserver_request_duration_seconds</c> with kube-apiserver's names and labels,
/// and a bound on the series a client can create (the CVE-2022-21698 class: one user inventing resources, verbs, scopes
/// and dry-run flags once added thousands of series and 30 MB to <c>/metrics</c>):
/// <list type="bullet">
/// <item><c>verb</c>, <c>dry_run</c>, <c>scope</c> and <c>code</c> come from fixed sets; an unlisted code folds to its
/// class (<c>5xx</c>) or <c>other</c>.</item>
/// <item><c>group</c>/<c>version</c>/<c>resource</c>/<c>subresource</c> are the request's own only for a built-in
/// Kubernetes resource or one the gateway has learned, which takes a 2xx answer from the upstream to an authenticated
/// request (at most <see cref="MaxLearnedResources"/>); anything else is <c>other</c>. A request a gateway layer refused
/// (401, 403, 400, 429, ...) never teaches a resource; an unauthenticated request has empty resource labels.</item>
/// <item>Backstop: each family holds at most <see cref="MaxRequestTotalSeries"/> / <see cref="MaxDurationSeries"/> label
/// sets, of which requests refused by the gateway may create at most half; past that a new label set is counted in the
/// single overflow series whose labels are all <c>other</c>.</item>
/// </list>
/// Both are <see cref="System.Diagnostics.Metrics"/> instruments of the host's meter (<see cref="Total"/>, <see cref="Duration"/>),
/// recorded once per request with the bounded label values as tags (<c>component</c>, always <c>apiserver</c>, is added by
/// <see cref="GatewayMetrics"/>'s bridge); the admitted label sets are kept per family, so a request costs one dictionary
/// lookup per family here and one in the bridge, and no allocation.
/// </summary>
internal sealed class RequestMetrics
{
    public const string Other = "other";
    /// <summary>Resources outside the built-in set that may get their own labels (CRDs, aggregated APIs).</summary>
    public const int MaxLearnedResources = 200;
    /// <summary>Label sets of <c>apiserver_request_total</c> (≈ 200 bytes each in the exposition).</summary>
    public const int MaxRequestTotalSeries = 2_000;
    /// <summary>Label sets of <c>apiserver_request_duration_seconds</c> (26 lines each: 23 buckets, +Inf, sum, count).</summary>
    public const int MaxDurationSeries = 500;
    /// <summary>The value of the <c>component</c> label, constant in the gateway.</summary>
    public const string Component = "apiserver";
    public const string TotalName = "apiserver_request_total";
    public const string DurationName = "apiserver_request_duration_seconds";

    private static readonly FrozenSet<string> Verbs = FrozenSet.Create(StringComparer.Ordinal,
        "GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION", "CONNECT", "PROXY", "HEAD", "OPTIONS", Other);

    /// <summary>Codes the gateway or kube-apiserver answer; others are folded to their class.</summary>
    private static readonly FrozenDictionary<int, string> Codes = new[]
    {
        101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308,
        400, 401, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 422, 425, 426, 428, 429, 431,
        500, 501, 502, 503, 504, 505,
    }.ToFrozenDictionary(c => c, c => c.ToString(CultureInfo.InvariantCulture));

    private static readonly string[] CodeClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"];

    private readonly ConcurrentDictionary<ResourceKey, byte> _learned = new();
    private int _learnedCount;
    private readonly SeriesSet _total = new(MaxRequestTotalSeries);
    private readonly SeriesSet _duration = new(MaxDurationSeries);

    public RequestMetrics(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        Total = meter.CreateCounter<long>(TotalName, description:
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.");
        Duration = meter.CreateHistogram<double>(DurationName, "s",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.");
    }

    /// <summary>One per finished request, tags <c>verb</c>, <c>dry_run</c>, <c>group</c>, <c>version</c>, <c>resource</c>,
    /// <c>subresource</c>, <c>scope</c>, <c>code</c> (bounded values).</summary>
    public Counter<long> Total { get; }

    /// <summary>The duration of each finished request that is not long-running, the same tags but <c>code</c>.</summary>
    public Histogram<double> Duration { get; }

    /// <summary>Resources learned so far (beyond the built-in set).</summary>
    public int LearnedResources => Volatile.Read(ref _learnedCount);

    private const string Invalid = "invalid";

    /// <summary>
    /// kube-apiserver's <c>dry_run</c> label (endpoints/metrics cleanDryRun): <c>""</c> without a <c>dryRun</c> parameter,
    /// <c>invalid</c> when any of its values is not <c>All</c> (the only one ValidateDryRun accepts; an empty value
    /// included), else the distinct values joined, which can only be <c>All</c>. Three values at most.
    /// </summary>
    public static string DryRunLabel(Microsoft.AspNetCore.Http.IQueryCollection query)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (!query.TryGetValue("dryRun", out var values) || values.Count == 0)
        {
            return "";
        }
        foreach (var value in values)
        {
            if (value != "All")
            {
                return Invalid;
            }
        }
        return "All";
    }

    /// <summary>Records one finished request.</summary>
    /// <param name="method">The HTTP method.</param>
    /// <param name="contentType">The request's Content-Type (tells APPLY from PATCH).</param>
    /// <param name="info">The request's RequestInfo, as parsed from the path.</param>
    /// <param name="authenticated">Whether a user was authenticated (else no resource labels).</param>
    /// <param name="dryRun">The <c>dry_run</c> label (<see cref="DryRunLabel"/>): <c>""</c>, <c>All</c> or <c>invalid</c>.</param>
    /// <param name="code">The response status code.</param>
    /// <param name="refusedByGateway">True when a gateway layer ended the request (it never teaches a resource).</param>
    /// <param name="seconds">The request's duration (not observed for long-running requests).</param>
    public void Record(string method, string? contentType, RequestInfo info, bool authenticated, string dryRun, int code,
        bool refusedByGateway, double seconds)
    {
        ArgumentNullException.ThrowIfNull(info);
        var verb = MetricVerb(method, contentType, info);
        if (!Verbs.Contains(verb))
        {
            verb = Other;
        }
        var resource = Resource(info, authenticated, teach: !refusedByGateway && code is >= 200 and < 300);
        // Unauthenticated requests carry no resource labels, and their scope is that of an empty path (cluster).
        var scope = !info.IsResourceRequest ? "" : !authenticated ? "cluster"
            : info.Name.Length > 0 ? "resource" : info.Namespace.Length > 0 ? "namespace" : "cluster";
        var key = new SeriesKey(verb, dryRun is "" or "All" ? dryRun : Invalid, resource.Group, resource.Version, resource.Resource, resource.Subresource, scope, Code(code));
        var total = _total.Admit(key, refusedByGateway);
        var tags = new TagList
        {
            { "verb", total.Verb }, { "dry_run", total.DryRun }, { "group", total.Group }, { "version", total.Version },
            { "resource", total.Resource }, { "subresource", total.Subresource }, { "scope", total.Scope }, { "code", total.Code },
        };
        Total.Add(1, tags);
        if (!info.IsLongRunning)
        {
            var duration = _duration.Admit(key with { Code = "" }, refusedByGateway);
            var durationTags = new TagList
            {
                { "verb", duration.Verb }, { "dry_run", duration.DryRun }, { "group", duration.Group }, { "version", duration.Version },
                { "resource", duration.Resource }, { "subresource", duration.Subresource }, { "scope", duration.Scope },
            };
            Duration.Record(seconds, durationTags);
        }
    }

    /// <summary>kube-apiserver's metric verb: upper case, LIST/WATCH/APPLY/CONNECT distinguished, else "other".</summary>
    internal static string MetricVerb(string method, string? contentType, RequestInfo info)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(info);
        if (info.IsResourceRequest && info.Subresource is "exec" or "attach" or "portforward" or "proxy")
        {
            return "CONNECT";
        }
        return info.Verb switch
        {
            "get" => "GET",
            "list" => "LIST",
            "watch" => "WATCH",
            "create" => "POST",
            "update" => "PUT",
            "patch" => contentType?.StartsWith("application/apply-patch", StringComparison.OrdinalIgnoreCase) == true ? "APPLY" : "PATCH",
            "delete" => "DELETE",
            "deletecollection" => "DELETECOLLECTION",
            "proxy" => "PROXY",
            _ => info.IsResourceRequest ? Other : method.ToUpperInvariant() is "GET" or "HEAD" or "POST" or "PUT" or "PATCH" or "DELETE" or "OPTIONS" ? method.ToUpperInvariant() : Other,
        };
    }

    /// <summary>The <c>code</c> label: a listed code as itself, another 100–599 as its class, anything else <c>other</c>.</summary>
    internal static string Code(int code) =>
        Codes.TryGetValue(code, out var text) ? text : code is >= 100 and < 600 ? CodeClasses[(code / 100) - 1] : Other;

    private ResourceKey Resource(RequestInfo info, bool authenticated, bool teach)
    {
        if (!info.IsResourceRequest || !authenticated)
        {
            return ResourceKey.None;
        }
        var key = new ResourceKey(info.ApiGroup, info.ApiVersion, info.Resource, info.Subresource);
        if (BuiltInResources.Contains(key) || _learned.ContainsKey(key))
        {
            return key;
        }
        if (teach && Volatile.Read(ref _learnedCount) < MaxLearnedResources)
        {
            if (Interlocked.Increment(ref _learnedCount) <= MaxLearnedResources)
            {
                if (!_learned.TryAdd(key, 0))
                {
                    Interlocked.Decrement(ref _learnedCount); // another request learned it first
                }
                return key;
            }
            Interlocked.Decrement(ref _learnedCount);
        }
        return ResourceKey.Folded;
    }

    internal readonly record struct ResourceKey(string Group, string Version, string Resource, string Subresource)
    {
        public static readonly ResourceKey None = new("", "", "", "");
        public static readonly ResourceKey Folded = new(Other, Other, Other, "");
    }

    private readonly record struct SeriesKey(string Verb, string DryRun, string Group, string Version, string Resource, string Subresource, string Scope, string Code)
    {
        public static readonly SeriesKey Overflow = new(Other, Other, Other, Other, Other, Other, Other, Other);
    }

    /// <summary>The label sets of one family: at most <c>capacity</c>, half of them for requests the gateway refused.</summary>
    private sealed class SeriesSet(int capacity)
    {
        private readonly ConcurrentDictionary<SeriesKey, byte> _series = new();
        private readonly int _refusedCapacity = capacity / 2;
        private int _count;
        private int _refusedCount;

        /// <summary>The label set to record: <paramref name="key"/> when it has (or now gets) a series, else the overflow set
        /// (which the bridge creates on first use, so /metrics shows it only once a bound has been reached).</summary>
        public SeriesKey Admit(in SeriesKey key, bool refused)
        {
            if (_series.ContainsKey(key))
            {
                return key;
            }
            if (!Reserve(refused))
            {
                return SeriesKey.Overflow;
            }
            if (!_series.TryAdd(key, 0))
            {
                Release(refused); // another request admitted it first
            }
            return key;
        }

        private bool Reserve(bool refused)
        {
            if (refused && Interlocked.Increment(ref _refusedCount) > _refusedCapacity)
            {
                Interlocked.Decrement(ref _refusedCount);
                return false;
            }
            if (Interlocked.Increment(ref _count) > capacity)
            {
                Interlocked.Decrement(ref _count);
                if (refused)
                {
                    Interlocked.Decrement(ref _refusedCount);
                }
                return false;
            }
            return true;
        }

        private void Release(bool refused)
        {
            Interlocked.Decrement(ref _count);
            if (refused)
            {
                Interlocked.Decrement(ref _refusedCount);
            }
        }
    }

    /// <summary>
    /// The resources of a Kubernetes 1.34 cluster with its usual groups and versions (including beta and alpha versions
    /// that a feature gate may serve), with their subresources. They keep their labels even when a layer refuses the
    /// request, so a dashboard shows a flood of 403s on secrets as such. Anything else must be learned.
    /// </summary>
    internal static readonly FrozenSet<ResourceKey> BuiltInResources = BuildBuiltIns();

    private static FrozenSet<ResourceKey> BuildBuiltIns()
    {
        (string Group, string[] Versions, string[] Resources)[] table =
        [
            ("", ["v1"], ["bindings", "componentstatuses", "configmaps", "endpoints", "events", "limitranges", "namespaces",
                "namespaces/finalize", "namespaces/status", "nodes", "nodes/proxy", "nodes/status", "persistentvolumeclaims",
                "persistentvolumeclaims/status", "persistentvolumes", "persistentvolumes/status", "pods", "pods/attach",
                "pods/binding", "pods/ephemeralcontainers", "pods/eviction", "pods/exec", "pods/log", "pods/portforward",
                "pods/proxy", "pods/resize", "pods/status", "podtemplates", "replicationcontrollers",
                "replicationcontrollers/scale", "replicationcontrollers/status", "resourcequotas", "resourcequotas/status",
                "secrets", "serviceaccounts", "serviceaccounts/token", "services", "services/proxy", "services/status"]),
            ("admissionregistration.k8s.io", ["v1", "v1beta1", "v1alpha1"], ["mutatingwebhookconfigurations",
                "validatingwebhookconfigurations", "validatingadmissionpolicies", "validatingadmissionpolicies/status",
                "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"]),
            ("apiextensions.k8s.io", ["v1"], ["customresourcedefinitions", "customresourcedefinitions/status"]),
            ("apiregistration.k8s.io", ["v1"], ["apiservices", "apiservices/status"]),
            ("apps", ["v1"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
                "statefulsets/scale", "statefulsets/status"]),
            ("authentication.k8s.io", ["v1"], ["selfsubjectreviews", "tokenreviews"]),
            ("authorization.k8s.io", ["v1"], ["localsubjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews",
                "subjectaccessreviews"]),
            ("autoscaling", ["v1", "v2"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
            ("batch", ["v1"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
            ("certificates.k8s.io", ["v1", "v1beta1", "v1alpha1"], ["certificatesigningrequests",
                "certificatesigningrequests/approval", "certificatesigningrequests/status", "clustertrustbundles",
                "podcertificaterequests", "podcertificaterequests/status"]),
            ("coordination.k8s.io", ["v1", "v1beta1", "v1alpha2"], ["leases", "leasecandidates"]),
            ("discovery.k8s.io", ["v1"], ["endpointslices"]),
            ("events.k8s.io", ["v1"], ["events"]),
            ("flowcontrol.apiserver.k8s.io", ["v1", "v1beta3"], ["flowschemas", "flowschemas/status",
                "prioritylevelconfigurations", "prioritylevelconfigurations/status"]),
            ("internal.apiserver.k8s.io", ["v1alpha1"], ["storageversions", "storageversions/status"]),
            ("networking.k8s.io", ["v1", "v1beta1"], ["ingressclasses", "ingresses", "ingresses/status", "networkpolicies",
                "ipaddresses", "servicecidrs", "servicecidrs/status"]),
            ("node.k8s.io", ["v1"], ["runtimeclasses"]),
            ("policy", ["v1"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
            ("rbac.authorization.k8s.io", ["v1"], ["clusterrolebindings", "clusterroles", "rolebindings", "roles"]),
            ("resource.k8s.io", ["v1", "v1beta1", "v1beta2", "v1alpha3"], ["deviceclasses", "resourceclaims",
                "resourceclaims/status", "resourceclaimtemplates", "resourceslices", "devicetaintrules"]),
            ("scheduling.k8s.io", ["v1"], ["priorityclasses"]),
            ("storage.k8s.io", ["v1", "v1beta1"], ["csidrivers", "csinodes", "csistoragecapacities", "storageclasses",
                "volumeattachments", "volumeattachments/status", "volumeattributesclasses"]),
            ("storagemigration.k8s.io", ["v1alpha1"], ["storageversionmigrations", "storageversionmigrations/status"]),
        ];
        var set = new HashSet<ResourceKey>();
        foreach (var (group, versions, resources) in table)
        {
            foreach (var version in versions)
            {
                foreach (var resource in resources)
                {
                    var slash = resource.IndexOf('/', StringComparison.Ordinal);
                    set.Add(slash < 0
                        ? new ResourceKey(group, version, resource, "")
                        : new ResourceKey(group, version, resource[..slash], resource[(slash + 1)..]));
                }
            }
        }
        return set.ToFrozenSet();
    }
}
