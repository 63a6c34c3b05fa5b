using Portcullis.Configuration;

namespace Portcullis.Core.Tests.Configuration;

/// <summary>The added <c>limits</c> section (issue 13, finding 9).</summary>
public sealed class LimitsConfigurationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-limits-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (GatewayConfiguration? Config, IReadOnlyList<ConfigError> Errors) Load(string limits)
    {
        foreach (var name in new[] { "server.crt", "server.key", "upstream.kubeconfig" })
        {
            File.WriteAllText(Path.Combine(_dir, name), "x");
        }
        var path = Path.Combine(_dir, "portcullis.yaml");
        File.WriteAllText(path, $"""
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls: {"{"}certFile: server.crt, keyFile: server.key{"}"}
            upstream: {"{"}kubeconfig: upstream.kubeconfig{"}"}
            {limits}
            """);
        return ConfigurationLoader.TryLoad(path);
    }

    [Fact]
    public void MaxRequestBodyBytes_defaults_to_kube_apiservers_3_MiB()
    {
        var (config, errors) = Load("");

        Assert.Empty(errors);
        Assert.Equal(3145728, config!.Limits.MaxRequestBodyBytes);
    }

    [Fact]
    public void MaxRequestBodyBytes_is_read_from_the_limits_section()
    {
        var (config, errors) = Load("limits:\n  maxRequestBodyBytes: 1048576");

        Assert.Empty(errors);
        Assert.Equal(1048576, config!.Limits.MaxRequestBodyBytes);
    }

    [Theory]
    [InlineData("0", "portcullis.yaml:6: limits.maxRequestBodyBytes: must be positive")]
    [InlineData("-1", "portcullis.yaml:6: limits.maxRequestBodyBytes: must be positive")]
    [InlineData("3MiB", "portcullis.yaml:6: limits.maxRequestBodyBytes: must be a whole number")]
    [InlineData("4294967296", "portcullis.yaml:6: limits.maxRequestBodyBytes: must be a whole number")]
    public void MaxRequestBodyBytes_must_be_a_positive_whole_number(string value, string error)
    {
        var (config, errors) = Load($"limits:\n  maxRequestBodyBytes: {value}");

        Assert.Null(config);
        Assert.EndsWith(error, Assert.Single(errors).ToString());
    }
}
