using System.Security.Cryptography;
using System.Text;

namespace Portcullis.Admission.Flowcontrol;

/// <summary>
/// kube-apiserver's bootstrap objects (k8s.io/apiserver pkg/apis/flowcontrol/bootstrap, 1.36): the mandatory
/// <c>exempt</c> and <c>catch-all</c> priority levels and flow schemas, always present, and the suggested ones, present
/// unless turned off. Restated from their definitions, not copied.
/// </summary>
public static class FlowcontrolBootstrap
{
    public const string Exempt = "exempt";
    public const string CatchAll = "catch-all";

    private static readonly FlowResourceRule[] AllResources = [new(["*"], ["*"], ["*"], true, ["*"])];
    private static readonly FlowNonResourceRule[] AllNonResources = [new(["*"], ["*"])];
    private static readonly FlowSubject[] Everyone = [new("Group", "system:unauthenticated"), new("Group", "system:authenticated")];

    public static IReadOnlyList<PriorityLevelConfiguration> MandatoryPriorityLevels { get; } =
    [
        new() { Name = Exempt, Uid = StableUid("PriorityLevelConfiguration", Exempt), Exempt = true, Source = "built-in (mandatory)" },
        new()
        {
            Name = CatchAll, Uid = StableUid("PriorityLevelConfiguration", CatchAll), NominalConcurrencyShares = 5, LendablePercent = 0,
            Reject = true, Queues = 0, HandSize = 0, QueueLengthLimit = 0, Source = "built-in (mandatory)",
        },
    ];

    public static IReadOnlyList<FlowSchema> MandatoryFlowSchemas { get; } =
    [
        All(Exempt, Exempt, 1, null, "mandatory", new FlowSubject("Group", "system:masters")),
        All(CatchAll, CatchAll, 10000, "ByUser", "mandatory", Everyone),
    ];

    public static IReadOnlyList<PriorityLevelConfiguration> SuggestedPriorityLevels { get; } =
    [
        Queued("system", 30, 33, 64, 6),
        Queued("node-high", 40, 25, 64, 6),
        Queued("leader-election", 10, 0, 16, 4),
        Queued("workload-high", 40, 50, 128, 6),
        Queued("workload-low", 100, 90, 128, 6),
        Queued("global-default", 20, 50, 128, 6),
    ];

    public static IReadOnlyList<FlowSchema> SuggestedFlowSchemas { get; } =
    [
        All("system-nodes", "system", 500, "ByUser", "suggested", new FlowSubject("Group", "system:nodes")),
        new()
        {
            Name = "system-node-high", Uid = StableUid("FlowSchema", "system-node-high"), PriorityLevelName = "node-high", MatchingPrecedence = 400,
            DistinguisherMethod = "ByUser", Source = "built-in (suggested)",
            Rules =
            [
                new([new("Group", "system:nodes")],
                    [new(["*"], [""], ["nodes", "nodes/status"], true, ["*"]), new(["*"], ["coordination.k8s.io"], ["leases"], false, ["*"])], []),
            ],
        },
        new()
        {
            Name = "probes", Uid = StableUid("FlowSchema", "probes"), PriorityLevelName = Exempt, MatchingPrecedence = 2, Source = "built-in (suggested)",
            Rules = [new(Everyone, [], [new(["get"], ["/healthz", "/readyz", "/livez"])])],
        },
        new()
        {
            Name = "system-leader-election", Uid = StableUid("FlowSchema", "system-leader-election"), PriorityLevelName = "leader-election",
            MatchingPrecedence = 100, DistinguisherMethod = "ByUser", Source = "built-in (suggested)",
            Rules =
            [
                new([new("User", "system:kube-controller-manager"), new("User", "system:kube-scheduler"), new("ServiceAccount", "*", "kube-system")],
                    [new(["get", "create", "update"], ["coordination.k8s.io"], ["leases"], false, ["*"])], []),
            ],
        },
        All("kube-controller-manager", "workload-high", 800, "ByNamespace", "suggested", new FlowSubject("User", "system:kube-controller-manager")),
        All("kube-scheduler", "workload-high", 800, "ByNamespace", "suggested", new FlowSubject("User", "system:kube-scheduler")),
        All("kube-system-service-accounts", "workload-high", 900, "ByNamespace", "suggested", new FlowSubject("ServiceAccount", "*", "kube-system")),
        All("service-accounts", "workload-low", 9000, "ByUser", "suggested", new FlowSubject("Group", "system:serviceaccounts")),
        All("global-default", "global-default", 9900, "ByUser", "suggested", Everyone),
    ];

    private static FlowSchema All(string name, string level, int precedence, string? distinguisher, string kind, params FlowSubject[] subjects) => new()
    {
        Name = name,
        Uid = StableUid("FlowSchema", name),
        PriorityLevelName = level,
        MatchingPrecedence = precedence,
        DistinguisherMethod = distinguisher,
        Rules = [new(subjects, AllResources, AllNonResources)],
        Source = $"built-in ({kind})",
    };

    private static PriorityLevelConfiguration Queued(string name, int shares, int lendable, int queues, int handSize) => new()
    {
        Name = name,
        Uid = StableUid("PriorityLevelConfiguration", name),
        NominalConcurrencyShares = shares,
        LendablePercent = lendable,
        Queues = queues,
        HandSize = handSize,
        QueueLengthLimit = 50,
        Source = "built-in (suggested)",
    };

    /// <summary>
    /// A UID for an object that has none (built-ins, manifests without <c>metadata.uid</c>): the same for the same kind
    /// and name in every gateway and across restarts, in UUID form (from SHA-256 of the kind and name).
    /// </summary>
    public static string StableUid(string kind, string name)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"portcullis.dev/flowcontrol/{kind}/{name}"), hash);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80); // version 8 (custom)
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80); // RFC 4122 variant
        var hex = Convert.ToHexStringLower(hash[..16]);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..32]}";
    }
}
