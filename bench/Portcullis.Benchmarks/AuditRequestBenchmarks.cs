using BenchmarkDotNet.Attributes;
using Portcullis.Audit;
using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Benchmarks;

/// <summary>
/// Everything the audit layer does for one proxied request, as the gateway drives it, at the load harness's policy
/// (Metadata for everything, RequestReceived omitted: one ResponseComplete event): the policy decision and the record,
/// RequestReceived (omitted), the two authorization annotations, the response status and the ResponseComplete event,
/// stored by a backend. <c>Backend</c> is the log backend writing a file in /tmp (blocking or batch), or a backend that
/// keeps nothing (the cost of the record and its serialization without any write). Compare with the gateway's CPU time
/// per proxied request that <c>bench/load/run.sh</c> prints.
/// </summary>
[MemoryDiagnoser]
public class AuditRequestBenchmarks
{
    private static readonly UserInfo User = UserInfo.Create("loader", ["developers", "system:authenticated"], "uid-1");
    private static readonly RequestInfo Request = RequestInfoParser.Parse("GET", "/api/v1/namespaces/default/pods", "");
    private static readonly IReadOnlyList<string> SourceIps = ["127.0.0.1"];

    private string _dir = "";
    private AuditSink _sink = null!;
    private int _n;

    [Params("blocking", "batch", "discard")]
    public string Backend { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("portcullis-bench-request-").FullName;
        var policy = AuditPolicyLoader.Parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n", "policy.yaml");
        var metrics = new AuditMetrics();
        IAuditBackend backend = Backend == "discard"
            ? new DiscardBackend()
            : new AuditLogBackend(new AuditLogOptions
            {
                Path = Path.Combine(_dir, "audit.log"),
                Mode = Backend == "batch" ? AuditMode.Batch : AuditMode.Blocking,
            }, metrics);
        _sink = new AuditSink(policy, [backend], metrics);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sink.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public async Task<bool> OneRequest()
    {
        var id = (++_n).ToString("x8", System.Globalization.CultureInfo.InvariantCulture) + "-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
        var audit = _sink.BeginRequest(id, "/api/v1/namespaces/default/pods", "list", User, SourceIps, "wrk/4.1.0", Request, DateTime.UtcNow);
        var received = await audit.EmitAsync(AuditStage.RequestReceived);
        audit.AddAnnotation("authorization.k8s.io/decision", "allow");
        audit.AddAnnotation("authorization.k8s.io/reason", "");
        audit.SetResponseStatus(200);
        var complete = await audit.EmitAsync(AuditStage.ResponseComplete);
        return received.Failed || complete.Failed;
    }

    /// <summary>Serializes each event, as every real backend does, and keeps nothing.</summary>
    private sealed class DiscardBackend : IAuditBackend
    {
        public string Name => "log";
        public AuditMode Mode => AuditMode.Blocking;

        public ValueTask ProcessAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken = default)
        {
            foreach (var e in events)
            {
                _ = e.Json;
            }
            return default;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => default;
        public ValueTask ShutdownAsync(CancellationToken cancellationToken = default) => default;
    }
}
