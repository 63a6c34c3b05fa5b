using BenchmarkDotNet.Attributes;
using Portcullis.Audit;
using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Benchmarks;

/// <summary>
/// Audit policy evaluation against the GCE configure-helper policy (19 rules, the longest fixture), and serializing one
/// Metadata event. Evaluation must not allocate.
/// </summary>
[MemoryDiagnoser]
public class AuditPolicyBenchmarks
{
    private AuditPolicy _policy = null!;
    private readonly UserInfo _user = UserInfo.Create("jane", ["dev", "system:authenticated"]);
    private readonly RequestInfo _getPod = RequestInfoParser.Parse("GET", "/api/v1/namespaces/dev/pods/web-1", "");
    private readonly RequestInfo _customList = RequestInfoParser.Parse("GET", "/apis/example.com/v1/widgets", "");
    private readonly RequestInfo _healthz = RequestInfoParser.Parse("GET", "/healthz/etcd", "");
    private AuditEvent _event = null!;

    [GlobalSetup]
    public void Setup()
    {
        _policy = AuditPolicyLoader.Load(FindFixture("gce-configure-helper-audit-policy.yaml"));
        _event = new AuditEvent
        {
            Level = AuditLevel.Metadata,
            AuditId = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            Stage = AuditStage.ResponseComplete,
            RequestUri = "/api/v1/namespaces/dev/pods/web-1",
            Verb = "get",
            User = _user,
            SourceIps = ["10.0.0.1"],
            UserAgent = "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd",
            ObjectRef = new AuditObjectReference("pods", "dev", "web-1", "", "v1"),
            ResponseStatus = new AuditResponseStatus(200),
            RequestReceivedTimestamp = DateTime.UtcNow,
            StageTimestamp = DateTime.UtcNow,
            Annotations = [new("authorization.k8s.io/decision", "allow"), new("authorization.k8s.io/reason", "")],
        };
    }

    private static string FindFixture(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Portcullis.Audit.Tests", "fixtures", name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException("fixture not found above " + AppContext.BaseDirectory, name);
    }

    /// <summary>Matches rule 15 of 19 ("Get responses can be large").</summary>
    [Benchmark]
    public AuditPolicyDecision EvaluateGetPod() => _policy.Evaluate(_user, _getPod);

    /// <summary>Falls through every rule to the catch-all.</summary>
    [Benchmark]
    public AuditPolicyDecision EvaluateCatchAll() => _policy.Evaluate(_user, _customList);

    /// <summary>Non-resource prefix rule.</summary>
    [Benchmark]
    public AuditPolicyDecision EvaluateHealthz() => _policy.Evaluate(_user, _healthz);

    [Benchmark]
    public byte[] SerializeMetadataEvent() => AuditEventSerializer.Serialize(_event);
}
