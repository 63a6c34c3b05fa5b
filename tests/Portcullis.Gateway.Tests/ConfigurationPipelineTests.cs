using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Snapshots;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// One load for every command: <c>portcullis validate</c> (the real CLI, as a child process), <c>portcullis serve</c>
/// (the CLI, and <see cref="GatewayHost.Create"/> in-process) and a hot reload (<see cref="GatewayHost.Reload"/>) go
/// through <see cref="GatewayConfigurationPipeline.Load"/>, so for every kind of broken file they report the same errors
/// with file and line, and a reload that breaks a file keeps the last good snapshot serving. Fields whose layer is not
/// built yet, or that would change nothing, are refused with file and line instead of being accepted.
/// </summary>
public sealed class ConfigurationPipelineTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>A kind of broken file: what to write, and the start of the one error every loader must report.</summary>
    private sealed record Broken(string File, Action<ConfigFolder> Break, string Field, string Message, string LineOf);

    /// <summary>
    /// One row per kind of file the snapshot reads. <c>LineOf</c> is a text whose first line in <c>File</c> is the line
    /// the error must name.
    /// </summary>
    private static readonly Dictionary<string, Broken> Rows = new()
    {
        ["server certificate that is not PEM"] = new("portcullis.yaml", f => f.Write("server.crt", "not a certificate\n"),
            "tls.certFile", "cannot load the server certificate", "certFile:"),
        ["key that does not match the server certificate"] = new("portcullis.yaml", f => f.Write("server.key", f.Pki.IssueServer().GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()),
            "tls.certFile", "cannot load the server certificate", "certFile:"),
        ["client CA file without a certificate"] = new("portcullis.yaml", f => f.Write("clients-ca.crt", "no certificate in here\n"),
            "tls.clientCAFile", "", "clientCAFile:"),
        ["token file row with two columns"] = new("portcullis.yaml", f => f.Write("tokens.csv", "token-root,root\n"),
            "authentication.tokenAuthFile", "token file", "tokenAuthFile:"),
        ["audit policy with level Bogus"] = new("audit-policy.yaml", f => f.Write("audit-policy.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Bogus\n"),
            "rules[0].level", "unsupported value \"Bogus\"", "level: Bogus"),
        ["RBAC manifest with an unknown kind"] = new("rbac.yaml", f => f.Write("rbac.yaml", GatewayTestHost.RbacYaml.Replace("kind: ClusterRoleBinding", "kind: ClusterRoleBindng", StringComparison.Ordinal)),
            "kind", "\"ClusterRoleBindng\" is not a kind of rbac.authorization.k8s.io", "kind: ClusterRoleBindng"),
        ["kubeconfig with an exec plugin"] = new("upstream.kubeconfig", f => f.Write("upstream.kubeconfig", f.Kubeconfig("exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}")),
            "users.user.exec", "credential plugins (exec) are not supported", "exec:"),
        ["CEL expression that does not compile"] = new("authn.yaml", f => f.Write("authn.yaml", ConfigFolder.AuthenticationConfiguration.Replace("claims.sub", "claims.sub +", StringComparison.Ordinal)),
            "jwt[0].claimMappings.username.expression", "expression 'claims.sub +' does not compile", "expression:"),
        ["deny list with a bad CIDR"] = new("deny.yaml", f => f.Write("deny.yaml", ConfigFolder.DenyList + "- sourceCIDR: 10.0.0.0/33\n  reason: bad mask\n"),
            "entries[1].sourceCIDR", "\"10.0.0.0/33\" is not a CIDR", "sourceCIDR:"),
        ["PROXY protocol without trusted proxies"] = new("portcullis.yaml", f => f.WriteConfig(extra: "network:\n  proxyProtocol: true\n"),
            "network.proxyProtocol", "needs network.trustedProxies", "proxyProtocol: true"),
        ["auto-ban whose maxDuration is below its duration"] = new("portcullis.yaml", f => f.WriteConfig(extra: "network:\n  autoBan:\n    enabled: true\n    duration: 1h\n    maxDuration: 30m\n"),
            "network.autoBan.maxDuration", "30m is shorter than network.autoBan.duration (1h)", "maxDuration: 30m"),
    };

    public static TheoryData<string> RowNames() => [.. Rows.Keys];

    [Fact]
    public async Task The_unbroken_folder_is_valid_for_validate_and_serve()
    {
        using var folder = new ConfigFolder();

        var validate = await PortcullisCli.RunAsync("validate", "--config", folder.ConfigPath);
        Assert.True(validate.ExitCode == 0, validate.ToString());
        Assert.Equal($"{folder.ConfigPath}: valid", validate.Stdout.Trim());
        await using var host = GatewayHost.Create(folder.ConfigPath, Quiet(reloadDelay: TimeSpan.FromHours(1)));
        Assert.NotNull(host);
    }

    [Theory]
    [MemberData(nameof(RowNames))]
    public async Task Validate_and_serve_report_the_same_errors_with_file_and_line(string row)
    {
        using var folder = new ConfigFolder();
        var broken = Rows[row];
        broken.Break(folder);

        // serve, in-process: GatewayHost.Create refuses with every error.
        var ex = Assert.Throws<ConfigurationException>(() => GatewayHost.Create(folder.ConfigPath, Quiet(reloadDelay: TimeSpan.FromHours(1))));
        var error = Assert.Single(ex.Errors).ToString();
        Assert.StartsWith($"{folder.Path(broken.File)}:{folder.LineOf(broken.File, broken.LineOf)}: {broken.Field}: {broken.Message}", error, StringComparison.Ordinal);

        // validate and serve, as the real CLI: exit 2, the same text on stderr, nothing on stdout.
        var validate = await PortcullisCli.RunAsync("validate", "--config", folder.ConfigPath);
        var serve = await PortcullisCli.RunAsync("serve", "--config", folder.ConfigPath, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0");
        Assert.True(validate.ExitCode == 2, validate.ToString());
        Assert.True(serve.ExitCode == 2, serve.ToString());
        Assert.Equal($"portcullis: {folder.ConfigPath}: 1 error(s):\n  {error}\n", validate.Stderr.ReplaceLineEndings("\n"));
        Assert.Equal(validate.Stderr, serve.Stderr);
        Assert.Equal("", validate.Stdout);
    }

    [Theory]
    [MemberData(nameof(RowNames))]
    public async Task A_reload_that_breaks_one_file_keeps_the_last_good_snapshot_serving(string row)
    {
        using var folder = new ConfigFolder();
        await using var upstream = await RecordingUpstream.StartAsync(folder.Pki.IssueServer(), folder.Pki.Certificate);
        folder.Write("upstream.kubeconfig", folder.Kubeconfig(server: upstream.Uri));
        // No automatic reload during the test: the explicit Reload() is the one under test.
        await using var host = GatewayHost.Create(folder.ConfigPath, Quiet(reloadDelay: TimeSpan.FromHours(1)));
        await host.StartAsync().WaitAsync(Timeout);
        var root = folder.Pki.IssueClient("root", "system:masters");
        await AssertServedAsync(folder, host, root);
        var good = host.Snapshots.Current;

        var broken = Rows[row];
        broken.Break(folder);
        var errors = host.Reload().Select(e => e.ToString()).ToList();

        using (var load = GatewayConfigurationPipeline.Load(folder.ConfigPath))
        {
            Assert.Equal(load.Errors.Select(e => e.ToString()), errors); // what validate prints
        }
        var error = Assert.Single(errors);
        Assert.StartsWith($"{folder.Path(broken.File)}:{folder.LineOf(broken.File, broken.LineOf)}: {broken.Field}: {broken.Message}", error, StringComparison.Ordinal);
        Assert.Same(good, host.Snapshots.Current);
        await AssertServedAsync(folder, host, root); // a new connection: the old certificate, CA and chains still serve
    }

    /// <summary>Fields whose layer is not built: each is refused at load, with its line, instead of being ignored.</summary>
    [Theory]
    [InlineData("admission.store", "admission:\n  store: redis://127.0.0.1:6379\n", "", "store:")]
    public void A_field_whose_layer_is_not_built_yet_is_refused_with_its_line(string field, string extra, string tls, string lineOf)
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(extra: extra, tls: tls);

        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);

        Assert.False(load.IsValid);
        var error = Assert.Single(load.Errors).ToString();
        Assert.StartsWith($"{folder.ConfigPath}:{folder.LineOf("portcullis.yaml", lineOf)}: {field}: not supported yet: ", error, StringComparison.Ordinal);
    }

    /// <summary>tls.revocationFile is read through the pipeline (validate, serve, reload): its errors name its own file and line.</summary>
    [Fact]
    public void A_revocation_list_with_a_bad_serial_is_refused_with_its_file_and_line()
    {
        using var folder = new ConfigFolder();
        folder.Write("revoked.yaml", "apiVersion: portcullis.dev/v1alpha1\nkind: RevocationList\ncertificates:\n- serial: \"xyz\"\n  reason: stolen\n");
        folder.WriteConfig(tls: "revocationFile: revoked.yaml");

        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);

        Assert.False(load.IsValid);
        var error = Assert.Single(load.Errors).ToString();
        Assert.StartsWith($"{folder.Path("revoked.yaml")}:4: certificates[0].serial: \"xyz\" must be hex", error, StringComparison.Ordinal);
    }

    /// <summary>network.autoBan: each bad value is refused with its line and what is wrong.</summary>
    [Theory]
    [InlineData("network.autoBan.failures", "failures: 0", "must be at least 1")]
    [InlineData("network.autoBan.window", "window: 0s", "must be a positive duration")]
    [InlineData("network.autoBan.duration", "duration: -5m", "must be a positive duration")]
    [InlineData("network.autoBan.maxDuration", "maxDuration: 10m", "10m is shorter than network.autoBan.duration (15m)")]
    [InlineData("network.autoBan.neverBan[1]", "neverBan: [127.0.0.1/32, 10.0.0.0/33]", "\"10.0.0.0/33\" is not a CIDR")]
    [InlineData("network.autoBan.stateFile", "stateFile: no-such-folder/bans.json", "the folder ")]
    public void A_bad_auto_ban_value_is_refused_with_its_line(string field, string setting, string message)
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(extra: $"network:\n  autoBan:\n    enabled: true\n    {setting}\n");

        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);

        Assert.False(load.IsValid);
        var error = Assert.Single(load.Errors).ToString();
        var key = setting[..setting.IndexOf(':', StringComparison.Ordinal)];
        Assert.StartsWith($"{folder.ConfigPath}:{folder.LineOf("portcullis.yaml", key + ":")}: {field}: {message}", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Auto_ban_fields_without_enabled_are_refused_as_having_no_effect()
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(extra: "network:\n  autoBan:\n    failures: 5\n");

        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);

        var error = Assert.Single(load.Errors).ToString();
        Assert.StartsWith($"{folder.ConfigPath}:{folder.LineOf("portcullis.yaml", "failures:")}: network.autoBan.failures: has no effect: network.autoBan.enabled is false", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_full_auto_ban_section_is_accepted()
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(extra: "network:\n  autoBan:\n    enabled: true\n    failures: 5\n    window: 30s\n    duration: 1m\n    maxDuration: 1h\n    stateFile: bans.json\n    neverBan: [127.0.0.1/32, ::1]\n    countForbidden: true\n");

        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);

        Assert.True(load.IsValid, string.Join("\n", load.Errors));
    }

    /// <summary>Fields that this configuration would never consult: refused, so nobody believes they act.</summary>
    [Theory]
    [InlineData("authentication.anonymous.paths", "anonymous: {enabled: false, paths: [/healthz]}", "", "[RBAC]", "", "anonymous:")]
    [InlineData("authentication.oidc.clientID", "oidc: {clientID: kubernetes}", "", "[RBAC]", "", "oidc:")]
    [InlineData("authentication.webhook.cacheTTL", "webhook: {cacheTTL: 1m}", "", "[RBAC]", "", "cacheTTL:")]
    [InlineData("authorization.webhook.configFile", "", "webhook: {configFile: upstream.kubeconfig}", "[RBAC]", "", "configFile: upstream.kubeconfig}")]
    [InlineData("authorization.rbac.manifests", "", "", "[AlwaysDeny]", "", "manifests:")]
    [InlineData("audit.policyFile", "", "", "[RBAC]", "policyFile: audit-policy.yaml", "policyFile:")]
    [InlineData("audit.log.path", "", "", "[RBAC]", "log: {path: audit.log}", "log:")]
    [InlineData("audit.log.maxAge", "", "", "[RBAC]", "policyFile: audit-policy.yaml\n  webhook: {configFile: upstream.kubeconfig}\n  log: {maxAge: 30}", "log: {maxAge")]
    [InlineData("audit.webhook.mode", "", "", "[RBAC]", "policyFile: audit-policy.yaml\n  log: {path: audit.log}\n  webhook: {mode: batch}", "webhook: {mode")]
    public void A_field_that_would_change_nothing_is_refused_with_its_line(string field, string authentication, string authorization, string modes, string audit, string lineOf)
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig(authentication: authentication, authorization: authorization, modes: modes, audit: audit.Length > 0 ? audit : ConfigFolder.DefaultAudit);

        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);

        Assert.False(load.IsValid);
        var error = Assert.Single(load.Errors).ToString();
        Assert.StartsWith($"{folder.ConfigPath}:{folder.LineOf("portcullis.yaml", lineOf)}: {field}: has no effect: ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Trusted_proxies_are_cidrs_and_proxy_protocol_with_them_is_valid()
    {
        using (var bad = new ConfigFolder())
        {
            bad.WriteConfig(extra: "network:\n  trustedProxies: [10.0.0.0/8, lb.example]\n");
            using var load = GatewayConfigurationPipeline.Load(bad.ConfigPath);
            var error = Assert.Single(load.Errors).ToString();
            Assert.Contains("network.trustedProxies[1]: \"lb.example\" is not a CIDR", error, StringComparison.Ordinal);
        }
        using var good = new ConfigFolder();
        good.WriteConfig(extra: "network:\n  trustedProxies: [10.0.0.0/8, 2001:db8::/32]\n  proxyProtocol: true\n");
        using var valid = GatewayConfigurationPipeline.Load(good.ConfigPath);
        Assert.True(valid.IsValid, string.Join("\n", valid.Errors));
    }

    [Fact]
    public void Not_built_sections_that_say_nothing_are_accepted()
    {
        // The rule is "nothing accepted that is not enforced": empty sections and values that mean "off" claim nothing.
        using var folder = new ConfigFolder();
        folder.WriteConfig(extra: "network:\n  trustedProxies: []\n  proxyProtocol: false\n  autoBan: {}\nadmission: {}\n", tls: "revocationFile: \"\"");

        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);

        Assert.True(load.IsValid, string.Join("\n", load.Errors));
    }

    [Fact]
    public void Explain_loads_with_the_same_reader_and_reports_lines()
    {
        // explain and who-can need only the authorization section, but read and validate it as serve does.
        using var folder = new ConfigFolder();
        folder.Write("deny.yaml", ConfigFolder.DenyList + "- sourceCIDR: 10.0.0.0/33\n  reason: bad mask\n");

        var (chain, errors) = GatewayConfigurationPipeline.LoadAuthorization(folder.ConfigPath);

        Assert.Null(chain);
        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);
        Assert.Equal(load.Errors, errors);
    }

    internal static GatewayHostOptions Quiet(TimeSpan reloadDelay) => new()
    {
        ListenOverride = "127.0.0.1:0",
        AdminOverride = "127.0.0.1:0",
        MinimumLogLevel = LogLevel.Warning,
        ReloadDelay = reloadDelay,
        UpstreamProbeInterval = TimeSpan.FromMinutes(5),
    };

    /// <summary>A request as system:masters over a new connection reaches the upstream.</summary>
    internal static async Task AssertServedAsync(ConfigFolder folder, GatewayHost host, X509Certificate2 clientCertificate)
    {
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && folder.Trusts(cert),
                ClientCertificates = [clientCertificate],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate,
            },
        };
        using var client = new HttpClient(handler) { BaseAddress = host.ListenUris[0], Timeout = Timeout };
        using var response = await client.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

}
