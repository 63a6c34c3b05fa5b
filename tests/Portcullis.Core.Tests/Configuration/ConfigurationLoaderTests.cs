using Portcullis.Configuration;

namespace Portcullis.Core.Tests.Configuration;

public sealed class ConfigurationLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private void WriteRequiredFiles()
    {
        Write("server.crt", "x");
        Write("server.key", "x");
        Write("upstream.kubeconfig", "x");
    }

    [Fact]
    public void A_revocation_file_without_a_client_ca_has_no_effect_and_is_refused_with_its_line()
    {
        WriteRequiredFiles();
        Write("revoked.yaml", "apiVersion: portcullis.dev/v1alpha1\nkind: RevocationList\ncertificates: []\n");
        var path = Write("portcullis.yaml", """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: server.crt
              keyFile: server.key
              revocationFile: revoked.yaml
            upstream:
              kubeconfig: upstream.kubeconfig
            """);

        var (_, errors) = ConfigurationLoader.TryLoad(path);

        var error = Assert.Single(errors);
        Assert.Equal(("tls.revocationFile", 6), (error.Field, error.Line));
        Assert.StartsWith("has no effect: tls.clientCAFile is not set", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Minimal_valid_configuration_loads_with_secure_defaults()
    {
        WriteRequiredFiles();
        var path = Write("portcullis.yaml", """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: server.crt
              keyFile: server.key
            upstream:
              kubeconfig: upstream.kubeconfig
            """);

        var config = ConfigurationLoader.Load(path);

        Assert.False(config.Authentication.Anonymous.Enabled);
        Assert.Equal(["RBAC"], config.Authorization.Modes);
        Assert.Equal("Impersonate", config.Upstream!.Identity);
        Assert.Equal(Path.Combine(_dir, "server.crt"), config.Resolve(config.Tls!.CertFile));
        Assert.Equal(TimeSpan.FromMinutes(15), config.Network.AutoBan.Duration);
    }

    [Fact]
    public void Every_error_is_reported_at_once_with_line_and_field()
    {
        var path = Write("bad.yaml", """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: missing.crt
              keyFile: missing.key
              minVersion: VersionTLS10
            network:
              allow: [10.0.0.0/8, not-a-cidr]
              autoBann: {}
            authorization:
              modes: [RBAC, Sometimes]
            upstream:
              kubeconfig: nope.kubeconfig
              identity: Whoever
            admin:
              address: 99
            """);

        var (config, errors) = ConfigurationLoader.TryLoad(path);

        Assert.Null(config);
        var text = string.Join("\n", errors);
        Assert.Contains("bad.yaml:4: tls.certFile: no such file", text);
        Assert.Contains("bad.yaml:5: tls.keyFile: no such file", text);
        Assert.Contains("bad.yaml:6: tls.minVersion: \"VersionTLS10\" is not one of", text);
        Assert.Contains("bad.yaml:8: network.allow[1]: \"not-a-cidr\" is not a CIDR", text);
        Assert.Contains("bad.yaml:9: network.autoBann: unknown field \"autoBann\" (did you mean \"autoBan\"?)", text);
        Assert.Contains("bad.yaml:11: authorization.modes[1]: \"Sometimes\" is not one of", text);
        Assert.Contains("bad.yaml:13: upstream.kubeconfig: no such file", text);
        Assert.Contains("bad.yaml:14: upstream.identity: \"Whoever\"", text);
        Assert.Contains("bad.yaml:16: admin.address: \"99\" is not host:port", text);
        Assert.Equal(9, errors.Count);
    }

    [Fact]
    public void ApiVersion_and_kind_must_name_this_contract()
    {
        WriteRequiredFiles();
        var path = Write("kind.yaml", """
            apiVersion: portcullis.dev/v1
            kind: Config
            tls: {certFile: server.crt, keyFile: server.key}
            upstream: {kubeconfig: upstream.kubeconfig}
            """);

        var (config, errors) = ConfigurationLoader.TryLoad(path);

        Assert.Null(config);
        var text = string.Join("\n", errors);
        Assert.Contains("kind.yaml:1: apiVersion: \"portcullis.dev/v1\" is not supported; use portcullis.dev/v1alpha1", text);
        Assert.Contains("kind.yaml:2: kind: \"Config\" is not GatewayConfiguration", text);
        Assert.Equal(2, errors.Count);
    }

    [Fact]
    public void Wrong_types_name_the_field()
    {
        WriteRequiredFiles();
        var path = Write("types.yaml", """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls: {certFile: server.crt, keyFile: server.key}
            upstream: {kubeconfig: upstream.kubeconfig}
            network:
              autoBan:
                enabled: maybe
                failures: many
                window: soon
            authorization:
              modes: RBAC
            """);

        var (_, errors) = ConfigurationLoader.TryLoad(path);

        var text = string.Join("\n", errors);
        Assert.Contains("types.yaml:7: network.autoBan.enabled: must be true or false", text);
        Assert.Contains("types.yaml:8: network.autoBan.failures: must be a whole number", text);
        Assert.Contains("types.yaml:9: network.autoBan.window: must be a duration", text);
        Assert.Contains("types.yaml:11: authorization.modes: must be a list", text);
    }

    [Fact]
    public void Yaml_syntax_error_names_the_line()
    {
        var path = Write("syntax.yaml", "apiVersion: portcullis.dev/v1alpha1\nkind: [unclosed\n");
        var (_, errors) = ConfigurationLoader.TryLoad(path);
        Assert.Single(errors);
        Assert.Contains("syntax.yaml:", errors[0].ToString());
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("15m", 900)]
    [InlineData("1h30m", 5400)]
    [InlineData("500ms", 0.5)]
    [InlineData("0", 0)]
    [InlineData("1.5h", 5400)]
    [InlineData("-1m30s", -90)]
    [InlineData("+2s", 2)]
    [InlineData("300us", 0.0003)]
    [InlineData("300\u00B5s", 0.0003)]
    [InlineData("1h0m0.5s", 3600.5)]
    [InlineData(".5s", 0.5)]
    public void Durations_parse_as_go_writes_them(string text, double seconds)
    {
        Assert.True(GoDuration.TryParse(text, out var value));
        Assert.Equal(seconds, value.TotalSeconds, 6);
    }

    // time.ParseDuration refuses each of these; so does the one parser every command uses.
    [Theory]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("1d")]
    [InlineData("7days")]
    [InlineData("1.2.3s")]
    [InlineData(".s")]
    [InlineData("1h 30m")]
    [InlineData("-")]
    public void Durations_go_refuses_are_refused(string text) => Assert.False(GoDuration.TryParse(text, out _));

    [Theory]
    [InlineData("90d", 90 * 24.0)]
    [InlineData("90", 90 * 24.0)]
    [InlineData("365d", 365 * 24.0)]
    [InlineData("2160h", 2160.0)]
    [InlineData("36h30m", 36.5)]
    public void Certificate_lifetimes_are_days_or_go_durations(string text, double hours)
    {
        Assert.True(Portcullis.Tls.CertificateLifetime.TryParse(text, out var lifetime));
        Assert.Equal(TimeSpan.FromHours(hours), lifetime);
    }

    [Theory]
    [InlineData("0d")]
    [InlineData("0")]
    [InlineData("-90d")]
    [InlineData("1.5d")]
    [InlineData("90 days")]
    [InlineData("d")]
    [InlineData("-1h")]
    [InlineData("36501d")]
    [InlineData("99999999999d")]
    public void Certificate_lifetimes_that_limit_nothing_or_mean_nothing_are_refused(string text) =>
        Assert.False(Portcullis.Tls.CertificateLifetime.TryParse(text, out _));

    [Theory]
    [InlineData(400 * 24.0, "400d")]
    [InlineData(364 * 24.0 + 0.01, "364d")]
    [InlineData(36.0, "1.5d")]
    [InlineData(12.0, "12h")]
    public void Certificate_lifetimes_are_written_as_days_or_below_a_day_as_durations(double hours, string text) =>
        Assert.Equal(text, Portcullis.Tls.CertificateLifetime.Format(TimeSpan.FromHours(hours)));

    [Fact]
    public void Client_certificate_policy_loads_with_refuse_as_the_default_action()
    {
        WriteRequiredFiles();
        Write("ca.crt", "x");
        var path = Write("policy.yaml", """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: server.crt
              keyFile: server.key
              clientCAFile: ca.crt
              clientCertificates:
                maxLifetime: 90d
            upstream: {kubeconfig: upstream.kubeconfig}
            """);

        var config = ConfigurationLoader.Load(path);

        var policy = Portcullis.Tls.CertificateLifetimePolicy.FromConfiguration(config.Tls);
        Assert.Equal(new Portcullis.Tls.CertificateLifetimePolicy(TimeSpan.FromDays(90), Refuse: true), policy);
        Assert.Null(Portcullis.Tls.CertificateLifetimePolicy.FromConfiguration(new TlsConfiguration { ClientCAFile = "ca.crt" }));
    }

    [Fact]
    public void Client_certificate_policy_errors_name_the_field_and_line()
    {
        WriteRequiredFiles();
        Write("ca.crt", "x");
        var path = Write("lifetime.yaml", """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: server.crt
              keyFile: server.key
              clientCAFile: ca.crt
              clientCertificates:
                maxLifetime: 3 months
                action: block
            upstream: {kubeconfig: upstream.kubeconfig}
            """);

        var (config, errors) = ConfigurationLoader.TryLoad(path);

        Assert.Null(config);
        var text = string.Join("\n", errors);
        Assert.Contains("lifetime.yaml:8: tls.clientCertificates.maxLifetime: \"3 months\" is not a lifetime; write days (90d, or 90) or a duration (2160h)", text);
        Assert.Contains("lifetime.yaml:9: tls.clientCertificates.action: \"block\" is not one of refuse, warn", text);
        Assert.Equal(2, errors.Count);
    }

    [Fact]
    public void Client_certificate_policy_without_effect_is_refused()
    {
        WriteRequiredFiles();
        Write("ca.crt", "x");
        var noCa = Write("noca.yaml", """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: server.crt
              keyFile: server.key
              clientCertificates: {maxLifetime: 90d}
            upstream: {kubeconfig: upstream.kubeconfig}
            """);
        var noLimit = Write("nolimit.yaml", """
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: server.crt
              keyFile: server.key
              clientCAFile: ca.crt
              clientCertificates: {action: warn}
            upstream: {kubeconfig: upstream.kubeconfig}
            """);

        var (_, noCaErrors) = ConfigurationLoader.TryLoad(noCa);
        var (_, noLimitErrors) = ConfigurationLoader.TryLoad(noLimit);

        Assert.Equal("noca.yaml:6: tls.clientCertificates.maxLifetime: has no effect: tls.clientCAFile is not set, so no client certificate is asked for",
            Assert.Single(noCaErrors).ToString().Replace(_dir + Path.DirectorySeparatorChar, "", StringComparison.Ordinal));
        Assert.Equal("nolimit.yaml:7: tls.clientCertificates.action: has no effect: tls.clientCertificates.maxLifetime is not set",
            Assert.Single(noLimitErrors).ToString().Replace(_dir + Path.DirectorySeparatorChar, "", StringComparison.Ordinal));
    }
}
