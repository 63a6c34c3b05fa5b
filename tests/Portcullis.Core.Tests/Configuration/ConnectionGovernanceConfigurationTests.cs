using Portcullis.Configuration;

namespace Portcullis.Core.Tests.Configuration;

/// <summary>Connection governance fields (issue 16, item 5): defaults, reading, and refusal of unsafe values by field.</summary>
public sealed class ConnectionGovernanceConfigurationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-governance-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (GatewayConfiguration? Config, IReadOnlyList<ConfigError> Errors) Load(string yaml, string tlsExtra = "")
    {
        foreach (var name in new[] { "server.crt", "server.key", "upstream.kubeconfig" })
        {
            File.WriteAllText(Path.Combine(_dir, name), "x");
        }
        var path = Path.Combine(_dir, "portcullis.yaml");
        File.WriteAllText(path, $"""
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls: {"{"}certFile: server.crt, keyFile: server.key{tlsExtra}{"}"}
            upstream: {"{"}kubeconfig: upstream.kubeconfig{"}"}
            {yaml}
            """);
        return ConfigurationLoader.TryLoad(path);
    }

    [Fact]
    public void Defaults_are_safe_and_match_the_documentation()
    {
        var (config, errors) = Load("");

        Assert.Empty(errors);
        var c = config!;
        Assert.Equal(250, c.Network.Connections.MaxPerSource);
        Assert.Equal(10_000, c.Network.Connections.MaxTotal);
        Assert.Equal(TimeSpan.FromSeconds(10), c.Tls!.HandshakeTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), c.Limits.RequestHeadersTimeout);
        Assert.Equal(240, c.Limits.MinRequestBodyDataRate.BytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(5), c.Limits.MinRequestBodyDataRate.GracePeriod);
        Assert.Equal(100, c.Limits.MaxRequestHeaderCount);
        Assert.Equal(65536, c.Limits.MaxRequestHeaderBytes);
        Assert.Equal(250, c.Limits.Http2.MaxConcurrentStreams);
        Assert.Equal(20, c.Limits.Http2.MaxStreamRefusalsPerSecond);
    }

    [Fact]
    public void Every_field_is_read()
    {
        var (config, errors) = Load("""
            network:
              connections: {maxPerSource: 5, maxTotal: 50}
            limits:
              maxRequestHeaderCount: 50
              maxRequestHeaderBytes: 8192
              requestHeadersTimeout: 7s
              minRequestBodyDataRate: {bytesPerSecond: 1000, gracePeriod: 3s}
              http2: {maxConcurrentStreams: 64, maxStreamRefusalsPerSecond: 5}
            """, tlsExtra: ", handshakeTimeout: 4s");

        Assert.Empty(errors);
        var c = config!;
        Assert.Equal((5, 50), (c.Network.Connections.MaxPerSource, c.Network.Connections.MaxTotal));
        Assert.Equal(TimeSpan.FromSeconds(4), c.Tls!.HandshakeTimeout);
        Assert.Equal((50, 8192), (c.Limits.MaxRequestHeaderCount, c.Limits.MaxRequestHeaderBytes));
        Assert.Equal(TimeSpan.FromSeconds(7), c.Limits.RequestHeadersTimeout);
        Assert.Equal((1000, TimeSpan.FromSeconds(3)), (c.Limits.MinRequestBodyDataRate.BytesPerSecond, c.Limits.MinRequestBodyDataRate.GracePeriod));
        Assert.Equal((64, 5), (c.Limits.Http2.MaxConcurrentStreams, c.Limits.Http2.MaxStreamRefusalsPerSecond));
    }

    [Theory]
    [InlineData("network:\n  connections: {maxPerSource: 0}", "portcullis.yaml:6: network.connections.maxPerSource: must be positive")]
    [InlineData("network:\n  connections: {maxTotal: -1}", "portcullis.yaml:6: network.connections.maxTotal: must be positive")]
    [InlineData("limits:\n  requestHeadersTimeout: 0s", "portcullis.yaml:6: limits.requestHeadersTimeout: must be a positive duration")]
    [InlineData("limits:\n  maxRequestHeaderBytes: 300000", "portcullis.yaml:6: limits.maxRequestHeaderBytes: must be at most 262144 (the server's own hard limit)")]
    [InlineData("limits:\n  maxRequestHeaderCount: 2001", "portcullis.yaml:6: limits.maxRequestHeaderCount: must be at most 2000 (the server's own hard limit)")]
    [InlineData("limits:\n  minRequestBodyDataRate: {bytesPerSecond: 0}", "portcullis.yaml:6: limits.minRequestBodyDataRate.bytesPerSecond: must be positive")]
    [InlineData("limits:\n  minRequestBodyDataRate: {gracePeriod: 1s}", "portcullis.yaml:6: limits.minRequestBodyDataRate.gracePeriod: must be longer than 1s (the server checks the rate once a second)")]
    [InlineData("limits:\n  http2: {maxConcurrentStreams: 0}", "portcullis.yaml:6: limits.http2.maxConcurrentStreams: must be positive")]
    [InlineData("limits:\n  http2: {maxStreamRefusalsPerSecond: 0}", "portcullis.yaml:6: limits.http2.maxStreamRefusalsPerSecond: must be positive")]
    public void Unsafe_values_are_refused_with_the_field(string yaml, string error)
    {
        var (config, errors) = Load(yaml);

        Assert.Null(config);
        Assert.EndsWith(error, Assert.Single(errors).ToString());
    }

    [Fact]
    public void A_zero_handshake_timeout_is_refused()
    {
        var (config, errors) = Load("", tlsExtra: ", handshakeTimeout: 0s");

        Assert.Null(config);
        Assert.EndsWith("tls.handshakeTimeout: must be a positive duration", Assert.Single(errors).ToString());
    }
}
