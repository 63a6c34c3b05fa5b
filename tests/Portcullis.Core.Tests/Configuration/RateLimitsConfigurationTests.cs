using Portcullis.Configuration;

namespace Portcullis.Core.Tests.Configuration;

/// <summary><c>admission.rateLimits</c> and <c>admission.longRunning</c> are read and validated with file and line.</summary>
public sealed class RateLimitsConfigurationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-ratelimits-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (GatewayConfiguration? Config, IReadOnlyList<ConfigError> Errors) Load(string admission)
    {
        foreach (var name in new[] { "server.crt", "server.key", "upstream.kubeconfig" })
        {
            File.WriteAllText(Path.Combine(_dir, name), "x");
        }
        var path = Path.Combine(_dir, "portcullis.yaml");
        File.WriteAllText(path, "apiVersion: portcullis.dev/v1alpha1\nkind: GatewayConfiguration\ntls: {certFile: server.crt, keyFile: server.key}\nupstream: {kubeconfig: upstream.kubeconfig}\n" + admission);
        return ConfigurationLoader.TryLoad(path);
    }

    [Fact]
    public void Limits_and_the_long_running_cap_are_read()
    {
        var (config, errors) = Load("admission:\n  rateLimits:\n  - {type: User, qps: 0.5, burst: 20}\n  - {type: SourceIP, qps: 100, burst: 200, cacheSize: 10000}\n  longRunning: {maxPerUser: 20}\n");
        Assert.Empty(errors);
        Assert.Equal(0.5, config!.Admission.RateLimits[0].Qps);
        Assert.Equal(4096, config.Admission.RateLimits[0].CacheSize);
        Assert.Equal(10000, config.Admission.RateLimits[1].CacheSize);
        Assert.Equal(20, config.Admission.LongRunning.MaxPerUser);
    }

    [Theory]
    [InlineData("  - {type: Pod, qps: 1, burst: 1}\n", "admission.rateLimits[0].type: \"Pod\" is not one of User, SourceIP, Namespace, Server")]
    [InlineData("  - {type: User, qps: 0, burst: 1}\n", "admission.rateLimits[0].qps: must be a positive number (tokens a second)")]
    [InlineData("  - {type: User, qps: 1}\n", "admission.rateLimits[0].burst: must be positive")]
    [InlineData("  - {type: User, qps: 1, burst: 1, cacheSize: 0}\n", "admission.rateLimits[0].cacheSize: must be positive")]
    public void A_bad_limit_is_refused_with_its_line(string limit, string expected)
    {
        var (config, errors) = Load("admission:\n  rateLimits:\n" + limit);
        Assert.Null(config);
        Assert.Equal($"{Path.Combine(_dir, "portcullis.yaml")}:7: {expected}", Assert.Single(errors).ToString());
    }

    [Fact]
    public void A_negative_long_running_cap_is_refused() =>
        Assert.Contains(Load("admission:\n  longRunning: {maxPerUser: -1}\n").Errors,
            e => e.ToString().EndsWith("admission.longRunning.maxPerUser: must not be negative", StringComparison.Ordinal));
}
