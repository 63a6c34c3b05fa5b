using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Gateway.Upstream;
using Portcullis.Network;
using Portcullis.Tls;

namespace Portcullis.Gateway.Snapshots;

/// <summary>
/// Everything a request needs from the configuration, built once at load time and swapped whole on reload.
/// A request reads one snapshot from start to end.
/// </summary>
internal sealed class GatewaySnapshot : IDisposable
{
    public required GatewayConfiguration Config { get; init; }
    public required SslStreamCertificateContext ServerCertificate { get; init; }
    public required SslProtocols TlsProtocols { get; init; }
    public CipherSuitesPolicy? CipherSuites { get; init; }
    /// <summary>L2: <c>tls.clientCertificates</c> (null: no lifetime limit), applied to every handshake that takes this snapshot.</summary>
    public CertificateLifetimePolicy? CertificateLifetime { get; init; }
    /// <summary>L1: network.allow and network.deny as one range search (allow minus deny, built at load; deny wins, empty allow = any).</summary>
    public required NetworkAccess Access { get; init; }
    /// <summary>L1: network.trustedProxies, whose forwarding headers (and PROXY protocol header) are believed.</summary>
    public required CidrSet TrustedProxies { get; init; }
    /// <summary>L1: network.proxyProtocol: connections from <see cref="TrustedProxies"/> start with a PROXY header.</summary>
    public bool ProxyProtocol => Config.Network.ProxyProtocol;
    /// <summary>L6: the audit policy (null: audit off), validated with the rest so a bad policy keeps the old one.</summary>
    public Portcullis.Audit.AuditPolicy? AuditPolicy => Audit.Policy;
    /// <summary>L6: the policy and the backends' settings, read and checked; <see cref="AuditSink"/> is built from them.</summary>
    public required Portcullis.Audit.AuditSinkPlan Audit { get; init; }
    /// <summary>The clock of the host that loaded the snapshot: drain deadlines and retirement run on it.</summary>
    public required TimeProvider Time { get; init; }

    /// <summary>
    /// L6: the audit sink this snapshot's requests write to, given by <see cref="SnapshotHolder"/> when the snapshot starts
    /// serving (a snapshot that never serves, as in <c>validate</c>, opens no backend). A reload that keeps the backends'
    /// settings hands the same sink on; one that changes them gets a new sink, and this one is flushed and closed once the
    /// last request that began on this snapshot has ended (<see cref="Drained"/>).
    /// </summary>
    public Portcullis.Audit.AuditSink AuditSink { get; private set; } = new(null, []);

    // The holder's own lease plus one per request in flight (TryEnter/Exit); 0 = retired and drained.
    private int _leases = 1;
    private bool _auditHandedOn;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the snapshot is retired, its last request has ended and its own audit sink is closed.</summary>
    public Task Drained => _drained.Task;

    /// <summary>The snapshot starts serving with <paramref name="sink"/>.</summary>
    internal void Serve(Portcullis.Audit.AuditSink sink) => AuditSink = sink;

    /// <summary>The next snapshot takes this one's sink (same backends): this one will not close it.</summary>
    internal Portcullis.Audit.AuditSink HandAuditOn()
    {
        _auditHandedOn = true;
        return AuditSink;
    }

    /// <summary>A request starts on this snapshot; false when it is already retired and drained (take the current one).</summary>
    internal bool TryEnter()
    {
        var leases = Volatile.Read(ref _leases);
        while (leases > 0)
        {
            var seen = Interlocked.CompareExchange(ref _leases, leases + 1, leases);
            if (seen == leases)
            {
                return true;
            }
            leases = seen;
        }
        return false;
    }

    /// <summary>A request that began on this snapshot has ended (its audit record is complete), or the holder let go of it.</summary>
    internal void Exit()
    {
        if (Interlocked.Decrement(ref _leases) == 0)
        {
            _ = CloseAuditAsync();
        }
    }

    private async Task CloseAuditAsync()
    {
        try
        {
            if (!_auditHandedOn)
            {
                // Every event of this snapshot's requests was handed to the sink: write them all (batches included), then
                // close. A backend that cannot finish within admin.drainTimeout counts the rest as dropped.
                using var deadline = new CancellationTokenSource(Config.Admin.DrainTimeout, Time);
                await AuditSink.ShutdownAsync(deadline.Token);
                await AuditSink.DisposeAsync();
            }
        }
        finally
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>L3: x509, token file, service accounts, OIDC/JWT, webhook, anonymous, built at load time.</summary>
    public required AuthenticatorChain Authenticator { get; init; }
    /// <summary>L4: deny list, network scopes, system:masters, then authorization.modes, built at load time.</summary>
    public required Portcullis.Authorization.AuthorizerChain Authorizer { get; init; }
    /// <summary>The kube-apiserver forwarded to; <c>portcullis webhook</c> has none (asking for it there is a bug).</summary>
    public Portcullis.Kubeconfig.KubeconfigEndpoint Upstream
    {
        get => _upstream ?? throw new InvalidOperationException(NoUpstream);
        init => _upstream = value;
    }
    public UpstreamClient UpstreamClient
    {
        get => _upstreamClient ?? throw new InvalidOperationException(NoUpstream);
        init => _upstreamClient = value;
    }
    /// <summary>False in <c>portcullis webhook</c>, which forwards nothing.</summary>
    public bool HasUpstream => _upstream is not null;
    private readonly Portcullis.Kubeconfig.KubeconfigEndpoint? _upstream;
    private readonly UpstreamClient? _upstreamClient;
    private const string NoUpstream = "this configuration has no upstream (portcullis webhook forwards nothing)";
    public required string IdentityMode { get; init; }
    public required DateTimeOffset LoadedAt { get; init; }
    /// <summary>Forwarding settings for requests that are not long-running: upstream.requestTimeout applies.</summary>
    public required Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig ShortRequest { get; init; }

    /// <summary>L2: <c>tls.revocationFile</c> and its CRLs (empty when unset), checked on every handshake.</summary>
    public RevocationList Revocation { get; init; } = RevocationList.Empty;

    /// <summary>
    /// L5: API Priority and Fairness as configured (null when <c>admission.priorityAndFairness.enabled</c> is false).
    /// Each snapshot has its own queues: requests that began on a retired snapshot drain through its queues while new
    /// requests are classified and queued by the new one.
    /// </summary>
    public Portcullis.Admission.Flowcontrol.FlowcontrolSystem? Flowcontrol { get; init; }

    /// <summary>
    /// L5: EventRateLimit from <c>admission.admissionControlConfigFile</c> (null when unset). Each snapshot has its own
    /// buckets: a reload starts every bucket full, as a kube-apiserver restart does.
    /// </summary>
    public Portcullis.Admission.RateLimiting.EventRateLimiter? EventRateLimit { get; init; }

    /// <summary>L5: <c>admission.rateLimits</c> (null when empty); each snapshot has its own buckets, full at a reload.</summary>
    public Portcullis.Admission.RateLimiting.RequestRateLimiter? RateLimits { get; init; }

    /// <summary>Every file the snapshot was built from; a change to any of them triggers a reload.</summary>
    public required IReadOnlyList<string> WatchedFiles { get; init; }

    /// <summary>Stops the background work of the chains (OIDC key refresh, webhook clients) once no request can use them.</summary>
    public void Retire(TimeSpan grace, TimeProvider time) =>
        _ = Task.Delay(grace, time).ContinueWith(_ =>
        {
            Authenticator.Dispose();
            Authorizer.Dispose();
        }, TaskScheduler.Default);

    /// <summary>Releases a snapshot that never served (validate, check): its chains and its upstream client.</summary>
    public void Dispose()
    {
        Authenticator.Dispose();
        Authorizer.Dispose();
        _upstreamClient?.Dispose();
    }

    /// <summary>L1: is a connection from <paramref name="address"/> let in? Deny wins over allow; empty allow = any.</summary>
    public bool IsAllowed(System.Net.IPAddress address) => Access.IsAllowed(address);

    /// <summary>
    /// API Priority and Fairness of <paramref name="config"/> (null when <c>admission.priorityAndFairness.enabled</c> is
    /// false or its files have errors): the one code path of the gateway and of <c>portcullis explain</c>. The files read
    /// are added to <paramref name="watched"/> when given.
    /// </summary>
    internal static Portcullis.Admission.Flowcontrol.FlowcontrolSystem? BuildFlowcontrol(GatewayConfiguration config, TimeProvider time,
        List<ConfigError> errors, List<string>? watched)
    {
        var apf = config.Admission.PriorityAndFairness;
        if (!apf.Enabled)
        {
            return null;
        }
        var apfFiles = apf.ConfigFiles.Select(config.Resolve).ToList();
        watched?.AddRange(apfFiles);
        return Portcullis.Admission.Flowcontrol.FlowcontrolSystem.Load(apfFiles, apf.MaxRequestsInflight + apf.MaxMutatingRequestsInflight,
            apf.SuggestedObjects, time, errors, []);
    }

    /// <summary>Builds a snapshot from a validated configuration; every failure is added to <paramref name="errors"/>.</summary>
    public static GatewaySnapshot? Build(GatewayConfiguration config, List<ConfigError> errors, TimeProvider time,
        Microsoft.Extensions.Logging.ILoggerFactory? loggers = null)
    {
        var file = config.SourcePath;
        var watched = new List<string> { config.SourcePath };
        var tls = config.Tls!;

        SslStreamCertificateContext? serverCert = null;
        try
        {
            var certPath = config.Resolve(tls.CertFile);
            var keyPath = config.Resolve(tls.KeyFile);
            watched.Add(certPath);
            watched.Add(keyPath);
            serverCert = PemCertificates.LoadServingContext(certPath, keyPath);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            // An ArgumentException's message ends in "(Parameter 'privateKey')", which means nothing to an operator.
            var reason = ex is ArgumentException { ParamName: { } name } ? ex.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : ex.Message;
            errors.Add(new ConfigError(file, 0, "tls.certFile",
                $"cannot load the server certificate {config.Resolve(tls.CertFile)} with key {config.Resolve(tls.KeyFile)}: {reason}"));
        }

        if (tls.ClientCAFile.Length > 0)
        {
            // Loaded and verified by the authenticator chain's certificate validator; watched here for reload.
            watched.Add(config.Resolve(tls.ClientCAFile));
        }

        AuthenticatorChain? authenticator = null;
        try
        {
            authenticator = AuthenticatorChain.Create(config, new AuthenticatorChainOptions
            {
                Time = time,
                LoggerFactory = loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
            });
        }
        catch (ConfigurationException ex)
        {
            errors.AddRange(ex.Errors);
        }
        // tls.revocationFile: read with its CRLs (verified against the client CA bundle); every file of it is watched, so an
        // edit applies to new handshakes at the next reload and closes the connections of newly revoked certificates.
        var revocation = RevocationList.Empty;
        if (tls.RevocationFile.Length > 0)
        {
            var revocationPath = config.Resolve(tls.RevocationFile);
            watched.Add(revocationPath);
            if (authenticator?.CertificateValidator is { } certificates)
            {
                var list = RevocationList.Load(revocationPath, certificates.Authorities, errors);
                if (list is not null)
                {
                    watched.AddRange(list.Files.Skip(1));
                    revocation = list;
                }
            }
        }
        var authn = config.Authentication;
        foreach (var f in new[] { authn.TokenAuthFile, authn.AuthenticationConfigFile, authn.Webhook.ConfigFile, authn.Oidc.CaFile }.Concat(authn.ServiceAccount.KeyFiles))
        {
            if (f.Length > 0)
            {
                watched.Add(config.Resolve(f));
            }
        }

        var (authorizer, authzErrors) = Portcullis.Authorization.AuthorizerChain.TryCreate(config, new Portcullis.Authorization.AuthorizerChainOptions
        {
            TimeProvider = time,
            LoggerFactory = loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
        });
        errors.AddRange(authzErrors);
        var authz = config.Authorization;
        if (authz.DenyListFile.Length > 0)
        {
            watched.Add(config.Resolve(authz.DenyListFile));
        }
        watched.AddRange(authz.Rbac.Manifests.Select(config.Resolve));
        if (authz.Webhook.ConfigFile.Length > 0 && authz.Modes.Contains(AuthorizationModes.Webhook))
        {
            watched.Add(config.Resolve(authz.Webhook.ConfigFile));
        }

        // The policy and the webhook's kubeconfig are watched: a reload applies them, backends included.
        if (config.Audit.PolicyFile.Length > 0)
        {
            watched.Add(config.Resolve(config.Audit.PolicyFile));
        }
        if (config.Audit.Webhook.ConfigFile.Length > 0)
        {
            watched.Add(config.Resolve(config.Audit.Webhook.ConfigFile));
        }
        var audit = Portcullis.Audit.AuditSink.Plan(config, errors);

        // No upstream section: portcullis webhook (the loader refuses it missing in serve mode and present in webhook mode).
        Portcullis.Kubeconfig.KubeconfigEndpoint? upstream = null;
        var upstreamPath = config.Upstream is null ? "" : config.Resolve(config.Upstream.Kubeconfig);
        if (config.Upstream is not null)
        {
            watched.Add(upstreamPath);
            upstream = Portcullis.Kubeconfig.KubeconfigFile.LoadEndpoint(upstreamPath, errors, config.Upstream.Context);
        }
        if (upstream is not null && upstream.Server.Scheme != Uri.UriSchemeHttps)
        {
            errors.Add(new ConfigError(upstreamPath, 0, "clusters.cluster.server", $"\"{upstream.Server}\" must be https://"));
        }
        if (upstream is not null && config.Upstream!.Identity == UpstreamIdentityModes.RequestHeader && upstream.ClientCertificate is null)
        {
            // Fail closed: without the certificate kube-apiserver ignores X-Remote-* and the token is the gateway's own account.
            errors.Add(new ConfigError(upstreamPath, 0, "users.user.client-certificate",
                "upstream.identity RequestHeader needs the gateway's client certificate: kube-apiserver reads X-Remote-* only from a client certificate its --requestheader-client-ca-file trusts"));
        }

        var flowcontrol = BuildFlowcontrol(config, time, errors, watched);

        Portcullis.Admission.RateLimiting.EventRateLimiter? eventRateLimit = null;
        if (config.Admission.AdmissionControlConfigFile.Length > 0)
        {
            var limits = Portcullis.Admission.RateLimiting.EventRateLimitFile.Load(config.Resolve(config.Admission.AdmissionControlConfigFile), errors, watched);
            eventRateLimit = limits is null ? null : new Portcullis.Admission.RateLimiting.EventRateLimiter(limits, time);
        }

        var protocols = tls.MinVersion == "VersionTLS13" ? SslProtocols.Tls13 : SslProtocols.Tls12 | SslProtocols.Tls13;
        CipherSuitesPolicy? suites = null;
        if (OperatingSystem.IsLinux())
        {
            suites = TlsCipherSuites.CreatePolicy(tls.CipherSuites);
        }
        else if (tls.CipherSuites.Count > 0)
        {
            errors.Add(new ConfigError(file, 0, "tls.cipherSuites", "not supported on this platform: .NET applies a cipher-suite list on Linux only"));
        }

        if (errors.Count > 0 || serverCert is null || (upstream is null && config.Upstream is not null) || authorizer is null || authenticator is null || audit is null)
        {
            authorizer?.Dispose();
            authenticator?.Dispose();
            return null;
        }
        var identity = config.Upstream?.Identity ?? "";
        var allow = CidrSet.Parse(config.Network.Allow);
        var deny = CidrSet.Parse(config.Network.Deny);
        return new GatewaySnapshot
        {
            Config = config,
            Time = time,
            ServerCertificate = serverCert,
            TlsProtocols = protocols,
            CipherSuites = suites,
            CertificateLifetime = CertificateLifetimePolicy.FromConfiguration(tls),
            Access = new NetworkAccess(allow, deny),
            TrustedProxies = CidrSet.Parse(config.Network.TrustedProxies),
            Authenticator = authenticator,
            Audit = audit,
            Authorizer = authorizer,
            Upstream = upstream!,
            UpstreamClient = upstream is null ? null! : new UpstreamClient(upstream, includeCredentials: identity != UpstreamIdentityModes.Passthrough),
            IdentityMode = identity,
            LoadedAt = time.GetUtcNow(),
            ShortRequest = new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig
            {
                ActivityTimeout = config.Upstream?.RequestTimeout ?? TimeSpan.FromSeconds(60),
                // HTTP/1.1 upstream, as NGINX does: identity headers need one line per value (UpstreamHeaderFilter).
                Version = System.Net.HttpVersion.Version11,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            },
            WatchedFiles = watched,
            Revocation = revocation,
            Flowcontrol = flowcontrol,
            EventRateLimit = eventRateLimit,
            RateLimits = config.Admission.RateLimits.Count == 0 ? null : new Portcullis.Admission.RateLimiting.RequestRateLimiter(
                [.. config.Admission.RateLimits.Select(l => new Portcullis.Admission.RateLimiting.RequestRateLimit(l.Type, l.Qps, l.Burst, l.CacheSize))], time),
        };
    }
}
