using BenchmarkDotNet.Attributes;
using Portcullis.Audit;
using Portcullis.Authentication;

namespace Portcullis.Benchmarks;

/// <summary>
/// Log backend throughput on its own: events serialized and written to a file in /tmp, one operation = one event.
/// Blocking writes (and flushes to the OS) each event as the request waits for it; batch enqueues and a background
/// loop writes up to 1000 events per write.
/// </summary>
[MemoryDiagnoser]
public class AuditLogBenchmarks
{
    private const int EventsPerInvoke = 10_000;

    private static readonly UserInfo User = UserInfo.Create("system:serviceaccount:dev:deployer",
        ["system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated"], "8d2a4a4c-4d6b-4a55-9c1e-6a1f7f0e0a11");

    private string _dir = "";
    private AuditLogBackend _backend = null!;
    private int _n;

    [Params(AuditMode.Blocking, AuditMode.Batch)]
    public AuditMode Mode { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("portcullis-bench-audit-").FullName;
        _backend = new AuditLogBackend(new AuditLogOptions { Path = Path.Combine(_dir, "audit.log"), Mode = Mode }, new AuditMetrics());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _backend.ShutdownAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A typical Metadata-level event (about 700 bytes), new each time so serialization is measured too.</summary>
    private AuditEvent NewEvent()
    {
        var now = DateTime.UtcNow;
        return new AuditEvent
        {
            Level = AuditLevel.Metadata,
            AuditId = (++_n).ToString("x8", System.Globalization.CultureInfo.InvariantCulture) + "-4f2e-4b1a-9a3c-1d2e3f4a5b6c",
            Stage = AuditStage.ResponseComplete,
            RequestUri = "/apis/apps/v1/namespaces/dev/deployments/web?fieldManager=kubectl-client-side-apply",
            Verb = "patch",
            User = User,
            SourceIps = ["10.12.0.17"],
            UserAgent = "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd",
            ObjectRef = new AuditObjectReference("deployments", "dev", "web", "apps", "v1"),
            ResponseStatus = new AuditResponseStatus(200),
            RequestReceivedTimestamp = now,
            StageTimestamp = now,
            Annotations =
            [
                new("authorization.k8s.io/decision", "allow"),
                new("authorization.k8s.io/reason", "RBAC: allowed by RoleBinding \"deployer/dev\" of ClusterRole \"edit\" to ServiceAccount \"deployer/dev\""),
            ],
        };
    }

    [Benchmark(OperationsPerInvoke = EventsPerInvoke)]
    public async Task WriteEvents()
    {
        var one = new AuditEvent[1];
        for (var i = 0; i < EventsPerInvoke; i++)
        {
            one[0] = NewEvent();
            await _backend.ProcessAsync(one);
        }
        await _backend.FlushAsync();
    }
}
