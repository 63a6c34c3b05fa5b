using System.Text;
using BenchmarkDotNet.Attributes;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Gateway.Upstream;

namespace Portcullis.Benchmarks;

/// <summary>
/// The gateway's own work on the upstream wire per request: building the identity lines, registering them under a nonce,
/// and the filter checking a typical HttpClient request head and replacing the marker (issue 13).
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class UpstreamWireBenchmarks
{
    private readonly UserInfo _user = UserInfo.Create("jane", ["developers", "qa", "system:authenticated"], "u-1",
        new Dictionary<string, IReadOnlyList<string>> { ["scopes"] = ["read"] });
    private readonly IdentityBlocks _blocks = new();
    private byte[] _head = [];
    private IdentityBlocks.Registration? _registration;
    private UpstreamHeaderFilter _filter = null!;

    [GlobalSetup]
    public void Setup()
    {
        using var request = new HttpRequestMessage();
        _registration = _blocks.Register(request.Headers, UpstreamIdentity.Build(_user, UpstreamIdentityModes.Impersonate, out _)!);
        var nonce = request.Headers.GetValues(_blocks.MarkerName).Single();
        // What SocketsHttpHandler writes for a kubectl get through the gateway (about 500 bytes).
        _head = Encoding.ASCII.GetBytes(
            "GET /api/v1/namespaces/dev/pods?limit=500 HTTP/1.1\r\nHost: 10.0.0.1:6443\r\n" +
            "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json\r\n" +
            "User-Agent: kubectl/v1.36.0 (linux/amd64) kubernetes/abcdef0\r\nKubectl-Command: kubectl get\r\n" +
            "Kubectl-Session: 0b6b1b2c-3d4e-4f50-8a9b-0c1d2e3f4a5b\r\nAccept-Encoding: gzip\r\n" +
            "Audit-ID: 6b9bc901-6722-46fa-98f3-456f3e772ba9\r\nX-Forwarded-For: 192.0.2.10\r\n" +
            $"{_blocks.MarkerName}: {nonce}\r\n\r\n");
        _filter = new UpstreamHeaderFilter(Stream.Null, _blocks, forUpgrade: false);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _registration?.Dispose();
        _filter.Dispose();
    }

    [Benchmark]
    public byte[]? BuildIdentity() => UpstreamIdentity.Build(_user, UpstreamIdentityModes.Impersonate, out _);

    [Benchmark]
    public void RegisterAndForget()
    {
        using var request = new HttpRequestMessage();
        using var registration = _blocks.Register(request.Headers, []);
    }

    [Benchmark]
    public void FilterOneHead() => _filter.Write(_head, 0, _head.Length);
}
