using System.Net;
using Portcullis.Network;
using Portcullis.Tls;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Configuration;

/// <summary>Reads and validates a <see cref="GatewayConfiguration"/>; reports every error at once.</summary>
public static class ConfigurationLoader
{
    /// <summary>Loads <paramref name="path"/>; throws <see cref="ConfigurationException"/> listing every error.</summary>
    /// <remarks>
    /// This is only the first stage (read and validate the file itself). Commands load a configuration through
    /// <c>GatewayConfigurationPipeline</c> in Portcullis.Gateway, which also builds everything the file names.
    /// </remarks>
    public static GatewayConfiguration Load(string path)
    {
        var (config, errors) = TryLoad(path);
        return errors.Count > 0 || config is null ? throw new ConfigurationException(errors) : config;
    }

    /// <summary>Reads and validates <paramref name="path"/>; the configuration is null when there is any error.</summary>
    public static (GatewayConfiguration? Config, IReadOnlyList<ConfigError> Errors) TryLoad(string path)
    {
        var errors = new List<ConfigError>();
        var config = Read(path, errors);
        return (errors.Count == 0 ? config : null, errors);
    }

    /// <summary>
    /// Reads and validates <paramref name="path"/>, adding every error to <paramref name="errors"/>; returns the bound
    /// configuration even when some field is invalid (null only when the file cannot be read or parsed), so that a
    /// caller that needs one section only can judge the errors of that section.
    /// </summary>
    public static GatewayConfiguration? Read(string path, List<ConfigError> errors, ConfigurationMode mode = ConfigurationMode.Serve)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var full = Path.GetFullPath(path);
        string text;
        try
        {
            text = File.ReadAllText(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError(full, 0, "(file)", $"cannot read the configuration file: {ex.Message}"));
            return null;
        }
        return Parse(text, full, errors, mode);
    }

    /// <summary>Parses and validates configuration text as if read from <paramref name="sourcePath"/>.</summary>
    public static GatewayConfiguration? Parse(string text, string sourcePath, List<ConfigError> errors, ConfigurationMode mode = ConfigurationMode.Serve)
    {
        var binder = new YamlBinder(sourcePath, errors);
        if (binder.ParseOne(text) is not { } root)
        {
            return null;
        }
        var config = binder.Bind<GatewayConfiguration>(root, "");
        config.SourcePath = sourcePath;
        config.BaseDirectory = Path.GetDirectoryName(sourcePath) ?? ".";
        config.SetFieldLines(FieldLines(root));
        new Validator(config, errors, mode).Run();
        return config;
    }

    /// <summary>The line of every field in the document, by dotted path with [i] indexes; "" is the document.</summary>
    private static Dictionary<string, int> FieldLines(YamlNode root)
    {
        var lines = new Dictionary<string, int>(StringComparer.Ordinal) { [""] = (int)root.Start.Line };
        void Walk(YamlNode node, string path)
        {
            switch (node)
            {
                case YamlMappingNode map:
                    foreach (var (key, value) in map.Children)
                    {
                        var field = (path.Length == 0 ? "" : path + ".") + ((key as YamlScalarNode)?.Value ?? "");
                        lines.TryAdd(field, (int)key.Start.Line);
                        Walk(value, field);
                    }
                    break;
                case YamlSequenceNode seq:
                    for (var i = 0; i < seq.Children.Count; i++)
                    {
                        var field = $"{path}[{i}]";
                        lines.TryAdd(field, (int)seq.Children[i].Start.Line);
                        Walk(seq.Children[i], field);
                    }
                    break;
                default:
                    break;
            }
        }
        Walk(root, "");
        return lines;
    }

    private sealed class Validator(GatewayConfiguration c, List<ConfigError> errors, ConfigurationMode mode)
    {
        public void Run()
        {
            if (c.ApiVersion != GatewayConfiguration.ApiVersionValue)
            {
                Fail("apiVersion", c.ApiVersion.Length == 0 ? "is required: portcullis.dev/v1alpha1" : $"\"{c.ApiVersion}\" is not supported; use portcullis.dev/v1alpha1");
            }
            if (c.Kind != GatewayConfiguration.KindValue)
            {
                Fail("kind", c.Kind.Length == 0 ? "is required: GatewayConfiguration" : $"\"{c.Kind}\" is not GatewayConfiguration");
            }

            for (var i = 0; i < c.Listeners.Count; i++)
            {
                if (!TryParseEndpoint(c.Listeners[i].Address, out _))
                {
                    Fail($"listeners[{i}].address", $"\"{c.Listeners[i].Address}\" is not host:port (127.0.0.1:6443, [::1]:6443, 0.0.0.0:6443)");
                }
            }

            if (c.Tls is null)
            {
                Fail("tls", "is required: serve is HTTPS only (set tls.certFile and tls.keyFile)");
            }
            else
            {
                RequireFile("tls.certFile", c.Tls.CertFile, required: true);
                RequireFile("tls.keyFile", c.Tls.KeyFile, required: true);
                RequireFile("tls.clientCAFile", c.Tls.ClientCAFile);
                RequireFile("tls.revocationFile", c.Tls.RevocationFile);
                if (c.Tls.RevocationFile.Length > 0 && c.Tls.ClientCAFile.Length == 0)
                {
                    NoEffect("tls.revocationFile", "tls.clientCAFile is not set, so no client certificate is accepted to revoke");
                }
                OneOf("tls.minVersion", c.Tls.MinVersion, ["VersionTLS12", "VersionTLS13"]);
                ClientCertificates(c.Tls);
                PositiveTime("tls.handshakeTimeout", c.Tls.HandshakeTimeout);
                for (var i = 0; i < c.Tls.CipherSuites.Count; i++)
                {
                    if (!TlsCipherSuites.IsAllowed(c.Tls.CipherSuites[i]))
                    {
                        Fail($"tls.cipherSuites[{i}]", $"\"{c.Tls.CipherSuites[i]}\" is not an allowed suite; use ECDHE with AEAD or TLS 1.3 suites ({string.Join(", ", TlsCipherSuites.Allowed)})");
                    }
                    else if (c.Tls.MinVersion == "VersionTLS13" && !TlsCipherSuites.IsTls13(c.Tls.CipherSuites[i]))
                    {
                        NoEffect($"tls.cipherSuites[{i}]", $"\"{c.Tls.CipherSuites[i]}\" is a TLS 1.2 suite and tls.minVersion is VersionTLS13");
                    }
                }
            }

            Cidrs("network.allow", c.Network.Allow);
            Cidrs("network.deny", c.Network.Deny);
            Cidrs("network.trustedProxies", c.Network.TrustedProxies);
            if (c.Network.ProxyProtocol && c.Network.TrustedProxies.Count == 0)
            {
                Fail("network.proxyProtocol", "needs network.trustedProxies: a PROXY header is read only from those peers (from any other it closes the connection)");
            }
            AutoBan(c.Network.AutoBan);
            Positive("network.connections.maxPerSource", c.Network.Connections.MaxPerSource);
            Positive("network.connections.maxTotal", c.Network.Connections.MaxTotal);

            var authn = c.Authentication;
            foreach (var p in authn.Anonymous.Paths.Select((p, i) => (p, i)))
            {
                if (!p.p.StartsWith('/'))
                {
                    Fail($"authentication.anonymous.paths[{p.i}]", $"\"{p.p}\" must start with /");
                }
            }
            if (authn.Anonymous.Paths.Count > 0 && !authn.Anonymous.Enabled)
            {
                NoEffect("authentication.anonymous.paths", "authentication.anonymous.enabled is false");
            }
            if (authn.Oidc.IssuerURL.Length == 0)
            {
                foreach (var field in c.WrittenBelow("authentication.oidc").Where(f => f != "authentication.oidc.issuerURL"))
                {
                    NoEffect(field, "authentication.oidc.issuerURL is not set");
                }
            }
            if (authn.Webhook.ConfigFile.Length == 0)
            {
                foreach (var field in c.WrittenBelow("authentication.webhook").Where(f => f != "authentication.webhook.configFile"))
                {
                    NoEffect(field, "authentication.webhook.configFile is not set");
                }
            }
            RequireFile("authentication.tokenAuthFile", authn.TokenAuthFile);
            for (var i = 0; i < authn.ServiceAccount.KeyFiles.Count; i++)
            {
                RequireFile($"authentication.serviceAccount.keyFiles[{i}]", authn.ServiceAccount.KeyFiles[i], required: true);
            }
            RequireFile("authentication.authenticationConfigFile", authn.AuthenticationConfigFile);
            RequireFile("authentication.oidc.caFile", authn.Oidc.CaFile);
            RequireFile("authentication.webhook.configFile", authn.Webhook.ConfigFile);
            OneOf("authentication.webhook.version", authn.Webhook.Version, ["v1", "v1beta1"]);
            if (authn.Oidc.IssuerURL.Length > 0)
            {
                if (!Uri.TryCreate(authn.Oidc.IssuerURL, UriKind.Absolute, out var issuer) || issuer.Scheme != Uri.UriSchemeHttps)
                {
                    Fail("authentication.oidc.issuerURL", $"\"{authn.Oidc.IssuerURL}\" must be an https:// URL");
                }
                if (authn.Oidc.ClientID.Length == 0)
                {
                    Fail("authentication.oidc.clientID", "is required when authentication.oidc.issuerURL is set");
                }
                if (authn.AuthenticationConfigFile.Length > 0)
                {
                    Fail("authentication.oidc", "cannot be combined with authentication.authenticationConfigFile (as --oidc-* flags and --authentication-config are exclusive)");
                }
            }
            foreach (var (alg, i) in authn.Oidc.SigningAlgs.Select((a, i) => (a, i)))
            {
                OneOf($"authentication.oidc.signingAlgs[{i}]", alg, ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]);
            }

            var authz = c.Authorization;
            if (authz.Modes.Count == 0)
            {
                Fail("authorization.modes", "must name at least one mode: AlwaysAllow, AlwaysDeny, RBAC or Webhook");
            }
            for (var i = 0; i < authz.Modes.Count; i++)
            {
                OneOf($"authorization.modes[{i}]", authz.Modes[i], AuthorizationModes.All);
            }
            if (authz.Modes.Distinct(StringComparer.Ordinal).Count() != authz.Modes.Count)
            {
                Fail("authorization.modes", "names a mode twice");
            }
            RequireFile("authorization.denyListFile", authz.DenyListFile);
            for (var i = 0; i < authz.Rbac.Manifests.Count; i++)
            {
                var resolved = c.Resolve(authz.Rbac.Manifests[i]);
                if (!File.Exists(resolved) && !Directory.Exists(resolved))
                {
                    Fail($"authorization.rbac.manifests[{i}]", $"no such file or folder: {resolved}");
                }
            }
            if (authz.Modes.Contains(AuthorizationModes.Webhook) && authz.Webhook.ConfigFile.Length == 0)
            {
                Fail("authorization.webhook.configFile", "is required when authorization.modes contains Webhook");
            }
            if (!authz.Modes.Contains(AuthorizationModes.Webhook))
            {
                foreach (var field in c.WrittenBelow("authorization.webhook"))
                {
                    NoEffect(field, "authorization.modes does not contain Webhook");
                }
            }
            if (!authz.Modes.Contains(AuthorizationModes.Rbac) && authz.Rbac.Manifests.Count > 0)
            {
                NoEffect("authorization.rbac.manifests", "authorization.modes does not contain RBAC");
            }
            RequireFile("authorization.webhook.configFile", authz.Webhook.ConfigFile);
            OneOf("authorization.webhook.version", authz.Webhook.Version, ["v1", "v1beta1"]);
            OneOf("authorization.webhook.failurePolicy", authz.Webhook.FailurePolicy, ["NoOpinion", "Deny"]);
            if (authz.Modes.Contains(AuthorizationModes.Webhook))
            {
                PositiveTime("authorization.webhook.timeout", authz.Webhook.Timeout);
                foreach (var (field, ttl) in new[] { ("authorization.webhook.authorizedTTL", authz.Webhook.AuthorizedTTL), ("authorization.webhook.unauthorizedTTL", authz.Webhook.UnauthorizedTTL) })
                {
                    if (ttl < TimeSpan.Zero)
                    {
                        Fail(field, "must not be negative (0 caches nothing)");
                    }
                }
            }
            for (var i = 0; i < authz.NetworkScopes.Count; i++)
            {
                var scope = authz.NetworkScopes[i];
                if (scope.Subjects.Count == 0)
                {
                    Fail($"authorization.networkScopes[{i}].subjects", "must name at least one subject");
                }
                for (var j = 0; j < scope.Subjects.Count; j++)
                {
                    OneOf($"authorization.networkScopes[{i}].subjects[{j}].kind", scope.Subjects[j].Kind, ["User", "Group", "ServiceAccount"]);
                }
                if (scope.Allow.Count == 0)
                {
                    Fail($"authorization.networkScopes[{i}].allow", "must list at least one CIDR");
                }
                Cidrs($"authorization.networkScopes[{i}].allow", scope.Allow);
            }

            // L5: API Priority and Fairness, EventRateLimit (admissionControlConfigFile, read with the snapshot), rate
            // limits and long-running caps are enforced; a shared store is not built yet.
            var admission = c.Admission;
            for (var i = 0; i < admission.RateLimits.Count; i++)
            {
                var limit = admission.RateLimits[i];
                OneOf($"admission.rateLimits[{i}].type", limit.Type, ["User", "SourceIP", "Namespace", "Server"]);
                if (!(limit.Qps > 0) || double.IsInfinity(limit.Qps))
                {
                    Fail($"admission.rateLimits[{i}].qps", "must be a positive number (tokens a second)");
                }
                Positive($"admission.rateLimits[{i}].burst", limit.Burst);
                Positive($"admission.rateLimits[{i}].cacheSize", limit.CacheSize);
            }
            NonNegative("admission.longRunning.maxPerUser", admission.LongRunning.MaxPerUser);
            if (admission.Store != "memory")
            {
                NotSupportedYet("admission.store", $"\"{admission.Store}\": only memory is supported");
            }
            var apf = admission.PriorityAndFairness;
            if (apf.Enabled)
            {
                NonNegative("admission.priorityAndFairness.maxRequestsInflight", apf.MaxRequestsInflight);
                NonNegative("admission.priorityAndFairness.maxMutatingRequestsInflight", apf.MaxMutatingRequestsInflight);
                if (apf.MaxRequestsInflight + apf.MaxMutatingRequestsInflight <= 0)
                {
                    Fail("admission.priorityAndFairness.maxRequestsInflight", "maxRequestsInflight + maxMutatingRequestsInflight (the server's concurrency limit) must be positive");
                }
                for (var i = 0; i < apf.ConfigFiles.Count; i++)
                {
                    var resolved = c.Resolve(apf.ConfigFiles[i]);
                    if (!File.Exists(resolved) && !Directory.Exists(resolved))
                    {
                        Fail($"admission.priorityAndFairness.configFiles[{i}]", $"no such file or folder: {resolved}");
                    }
                }
            }
            else
            {
                foreach (var field in c.WrittenBelow("admission.priorityAndFairness").Where(f => f != "admission.priorityAndFairness.enabled"))
                {
                    NoEffect(field, "admission.priorityAndFairness.enabled is false");
                }
            }

            var audit = c.Audit;
            RequireFile("audit.policyFile", audit.PolicyFile);
            OneOf("audit.log.mode", audit.Log.Mode, ["blocking", "blocking-strict", "batch"]);
            NonNegative("audit.log.maxAge", audit.Log.MaxAge);
            NonNegative("audit.log.maxBackup", audit.Log.MaxBackup);
            NonNegative("audit.log.maxSize", audit.Log.MaxSize);
            if (audit.Log.Path.Length > 0 && audit.Log.Path != "-")
            {
                var dir = Path.GetDirectoryName(c.Resolve(audit.Log.Path));
                if (dir is not null && !Directory.Exists(dir))
                {
                    Fail("audit.log.path", $"the folder {dir} does not exist");
                }
            }
            RequireFile("audit.webhook.configFile", audit.Webhook.ConfigFile);
            OneOf("audit.webhook.mode", audit.Webhook.Mode, ["blocking", "blocking-strict", "batch"]);
            var backends = audit.Log.Path.Length > 0 || audit.Webhook.ConfigFile.Length > 0;
            if (audit.PolicyFile.Length > 0 && !backends)
            {
                NoEffect("audit.policyFile", "neither audit.log.path nor audit.webhook.configFile is set, so no event would be written");
            }
            if (audit.PolicyFile.Length == 0 && backends)
            {
                NoEffect(audit.Log.Path.Length > 0 ? "audit.log.path" : "audit.webhook.configFile", "audit.policyFile is not set, so no event would be written (audit is off)");
            }
            if (audit.Log.Path.Length == 0)
            {
                foreach (var field in c.WrittenBelow("audit.log").Where(f => f != "audit.log.path"))
                {
                    NoEffect(field, "audit.log.path is not set");
                }
            }
            if (audit.Webhook.ConfigFile.Length == 0)
            {
                foreach (var field in c.WrittenBelow("audit.webhook").Where(f => f != "audit.webhook.configFile"))
                {
                    NoEffect(field, "audit.webhook.configFile is not set");
                }
            }

            if (mode == ConfigurationMode.Webhook)
            {
                // portcullis webhook: no upstream, a client CA, and no field that would do nothing there.
                WebhookModeRules.Check(c, Fail);
            }
            else if (c.Upstream is null)
            {
                Fail("upstream", "is required: upstream.kubeconfig names the kube-apiserver to forward to");
            }
            else
            {
                RequireFile("upstream.kubeconfig", c.Upstream.Kubeconfig, required: true);
                OneOf("upstream.identity", c.Upstream.Identity, UpstreamIdentityModes.All);
                PositiveTime("upstream.requestTimeout", c.Upstream.RequestTimeout);
            }

            if (!TryParseEndpoint(c.Admin.Address, out _))
            {
                Fail("admin.address", $"\"{c.Admin.Address}\" is not host:port");
            }
            OneOf("admin.logFormat", c.Admin.LogFormat, ["text", "json"]);

            Positive("limits.maxRequestBodyBytes", c.Limits.MaxRequestBodyBytes);
            Limits(c.Limits);
        }

        private void Limits(LimitsConfiguration limits)
        {
            Positive("limits.maxRequestHeaderCount", limits.MaxRequestHeaderCount);
            if (limits.MaxRequestHeaderCount > LimitsConfiguration.KestrelMaxRequestHeaderCount)
            {
                Fail("limits.maxRequestHeaderCount", $"must be at most {LimitsConfiguration.KestrelMaxRequestHeaderCount} (the server's own hard limit)");
            }
            Positive("limits.maxRequestHeaderBytes", limits.MaxRequestHeaderBytes);
            if (limits.MaxRequestHeaderBytes > LimitsConfiguration.KestrelMaxRequestHeaderBytes)
            {
                Fail("limits.maxRequestHeaderBytes", $"must be at most {LimitsConfiguration.KestrelMaxRequestHeaderBytes} (the server's own hard limit)");
            }
            PositiveTime("limits.requestHeadersTimeout", limits.RequestHeadersTimeout);
            Positive("limits.minRequestBodyDataRate.bytesPerSecond", limits.MinRequestBodyDataRate.BytesPerSecond);
            // Kestrel measures the rate on its 1-second heartbeat: a grace period must be longer than one beat.
            if (limits.MinRequestBodyDataRate.GracePeriod <= TimeSpan.FromSeconds(1))
            {
                Fail("limits.minRequestBodyDataRate.gracePeriod", "must be longer than 1s (the server checks the rate once a second)");
            }
            Positive("limits.http2.maxConcurrentStreams", limits.Http2.MaxConcurrentStreams);
            Positive("limits.http2.maxStreamRefusalsPerSecond", limits.Http2.MaxStreamRefusalsPerSecond);
        }

        private void ClientCertificates(TlsConfiguration tls)
        {
            var policy = tls.ClientCertificates;
            if (tls.ClientCAFile.Length == 0)
            {
                foreach (var field in c.WrittenBelow("tls.clientCertificates"))
                {
                    NoEffect(field, "tls.clientCAFile is not set, so no client certificate is asked for");
                }
                return;
            }
            OneOf("tls.clientCertificates.action", policy.Action, CertificateLifetimeActions.All);
            if (policy.MaxLifetime.Length == 0)
            {
                if (c.WrittenBelow("tls.clientCertificates").Contains("tls.clientCertificates.action"))
                {
                    NoEffect("tls.clientCertificates.action", "tls.clientCertificates.maxLifetime is not set");
                }
                return;
            }
            if (!CertificateLifetime.TryParse(policy.MaxLifetime, out _))
            {
                Fail("tls.clientCertificates.maxLifetime", $"\"{policy.MaxLifetime}\" is not a lifetime; write days (90d, or 90) or a duration (2160h), more than 0 and at most {CertificateLifetime.MaxDays}d");
            }
        }

        private void AutoBan(AutoBanConfiguration ban)
        {
            if (!ban.Enabled)
            {
                foreach (var field in c.WrittenBelow("network.autoBan").Where(f => f != "network.autoBan.enabled"))
                {
                    NoEffect(field, "network.autoBan.enabled is false");
                }
                return;
            }
            if (ban.Failures < 1)
            {
                Fail("network.autoBan.failures", "must be at least 1");
            }
            PositiveTime("network.autoBan.window", ban.Window);
            PositiveTime("network.autoBan.duration", ban.Duration);
            PositiveTime("network.autoBan.maxDuration", ban.MaxDuration);
            if (ban.Duration > TimeSpan.Zero && ban.MaxDuration > TimeSpan.Zero && ban.MaxDuration < ban.Duration)
            {
                Fail("network.autoBan.maxDuration", $"{GoDuration.Format(ban.MaxDuration)} is shorter than network.autoBan.duration ({GoDuration.Format(ban.Duration)})");
            }
            if (ban.StateFile.Length > 0)
            {
                var dir = Path.GetDirectoryName(c.Resolve(ban.StateFile));
                if (dir is not null && !Directory.Exists(dir))
                {
                    Fail("network.autoBan.stateFile", $"the folder {dir} does not exist");
                }
            }
            Cidrs("network.autoBan.neverBan", ban.NeverBan);
        }

        private void Fail(string field, string message) => errors.Add(new ConfigError(c.SourcePath, c.LineOf(field), field, message));

        /// <summary>A field whose layer is not built yet: refused, so nobody believes it protects them.</summary>
        private void NotSupportedYet(string field, string what) => Fail(field, $"not supported yet: {what}");

        /// <summary>A field that would change nothing in this configuration: refused, so nobody believes it does.</summary>
        private void NoEffect(string field, string why) => Fail(field, $"has no effect: {why}");

        private void RequireFile(string field, string path, bool required = false)
        {
            if (path.Length == 0)
            {
                if (required)
                {
                    Fail(field, "is required");
                }
                return;
            }
            var resolved = c.Resolve(path);
            if (!File.Exists(resolved))
            {
                Fail(field, $"no such file: {resolved}");
            }
        }

        private void OneOf(string field, string value, IReadOnlyList<string> allowed)
        {
            if (!allowed.Contains(value))
            {
                Fail(field, $"\"{value}\" is not one of {string.Join(", ", allowed)}");
            }
        }

        private void Positive(string field, int value)
        {
            if (value <= 0)
            {
                Fail(field, "must be positive");
            }
        }

        private void NonNegative(string field, int value)
        {
            if (value < 0)
            {
                Fail(field, "must not be negative");
            }
        }

        private void PositiveTime(string field, TimeSpan value)
        {
            if (value <= TimeSpan.Zero)
            {
                Fail(field, "must be a positive duration");
            }
        }

        private void Cidrs(string field, List<string> values) =>
            CidrSet.Parse(values, (i, v) => Fail($"{field}[{i}]", $"\"{v}\" is not a CIDR (10.0.0.0/8, 2001:db8::/32) or IP address"));
    }

    /// <summary>Parses <c>host:port</c>, <c>[v6]:port</c>; host must be an IP address or <c>localhost</c>.</summary>
    public static bool TryParseEndpoint(string text, out IPEndPoint endpoint)
    {
        endpoint = new IPEndPoint(IPAddress.Loopback, 0);
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out var port) || port is < 0 or > 65535)
        {
            return false;
        }
        var host = text[..colon].Trim('[', ']');
        if (host == "localhost")
        {
            endpoint = new IPEndPoint(IPAddress.Loopback, port);
            return true;
        }
        if (!IPAddress.TryParse(host, out var address))
        {
            return false;
        }
        endpoint = new IPEndPoint(address, port);
        return true;
    }
}
