using BenchmarkDotNet.Attributes;
using Portcullis.Authorization;

namespace Portcullis.Benchmarks;

[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class RequestInfoBenchmarks
{
    [Benchmark]
    public RequestInfo NamespacedGet() => RequestInfoParser.Parse("GET", "/api/v1/namespaces/dev/pods/web-1", "");

    [Benchmark]
    public RequestInfo ListWithSelector() => RequestInfoParser.Parse("GET", "/apis/apps/v1/namespaces/dev/deployments", "limit=500&labelSelector=app%3Dweb");

    [Benchmark]
    public RequestInfo WatchQuery() => RequestInfoParser.Parse("GET", "/api/v1/namespaces/dev/pods", "resourceVersion=1&watch=true");

    [Benchmark]
    public bool RefusedDotSegment() => RequestInfoParser.TryParse("GET", "/api/v1/namespaces/x/../kube-system/secrets", "", out _, out _);
}
