namespace Portcullis.Configuration;

// The configuration contract of ../../docs/configuration.md (CONFIG.md). Property names are the YAML field
// names in camelCase; the binder maps them one to one. Defaults are the secure ones.

/// <summary>The root document: <c>apiVersion: portcullis.dev/v1alpha1</c>, <c>kind: GatewayConfiguration</c>.</summary>
public sealed class GatewayConfiguration
{
    public const string ApiVersionValue = "portcullis.dev/v1alpha1";
    public const string KindValue = "GatewayConfiguration";

    public string ApiVersion { get; set; } = "";
    public string Kind { get; set; } = "";
    public List<ListenerConfiguration> Listeners { get; set; } = [];
    public TlsConfiguration? Tls { get; set; }
    public NetworkConfiguration Network { get; set; } = new();
    public AuthenticationConfiguration Authentication { get; set; } = new();
    public AuthorizationConfiguration Authorization { get; set; } = new();
    public AdmissionConfiguration Admission { get; set; } = new();
    public AuditConfiguration Audit { get; set; } = new();
    public UpstreamConfiguration? Upstream { get; set; }
    public AdminConfiguration Admin { get; set; } = new();
    /// <summary>Added section: limits on what a request may carry.</summary>
    public LimitsConfiguration Limits { get; set; } = new();

    /// <summary>Directory of the config file; every relative path in it is resolved against this.</summary>
    [NotInYaml] public string BaseDirectory { get; set; } = "";
    /// <summary>Absolute path of the config file itself.</summary>
    [NotInYaml] public string SourcePath { get; set; } = "";

    /// <summary>Resolves a path from the file relative to <see cref="BaseDirectory"/>; empty stays empty.</summary>
    public string Resolve(string? path) =>
        string.IsNullOrEmpty(path) ? "" : Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(BaseDirectory, path));

    // Line of every field written in the file, by dotted path with [i] indexes ("" is the document itself).
    private IReadOnlyDictionary<string, int> _lines = new Dictionary<string, int>(StringComparer.Ordinal);

    /// <summary>Records where each field was written; called by <see cref="ConfigurationLoader"/>.</summary>
    internal void SetFieldLines(IReadOnlyDictionary<string, int> lines) => _lines = lines;

    /// <summary>Fields written directly below <paramref name="section"/> (e.g. <c>admission</c>), in file order.</summary>
    public IEnumerable<string> WrittenBelow(string section) =>
        _lines.Where(kv => kv.Key.StartsWith(section + ".", StringComparison.Ordinal) && !kv.Key.AsSpan(section.Length + 1).ContainsAny('.', '['))
            .OrderBy(kv => kv.Value).Select(kv => kv.Key);

    /// <summary>
    /// The line of <paramref name="field"/> in the file; for a field that is not written, the line of the nearest
    /// enclosing field that is (the document's first line at worst); 0 when the file was not parsed.
    /// </summary>
    public int LineOf(string field)
    {
        var path = field;
        while (true)
        {
            if (_lines.TryGetValue(path, out var line))
            {
                return line;
            }
            if (path.Length == 0)
            {
                return 0;
            }
            var cut = Math.Max(path.LastIndexOf('.'), path.LastIndexOf('['));
            path = cut < 0 ? "" : path[..cut];
        }
    }
}

/// <summary>Marks a property the YAML binder must not bind (computed or runtime-only).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NotInYamlAttribute : Attribute;

public sealed class ListenerConfiguration
{
    public const string DefaultAddress = "127.0.0.1:6443";
    public string Address { get; set; } = DefaultAddress;
}

public sealed class TlsConfiguration
{
    public string CertFile { get; set; } = "";
    public string KeyFile { get; set; } = "";
    public string MinVersion { get; set; } = "VersionTLS12";
    public List<string> CipherSuites { get; set; } = [];
    public string ClientCAFile { get; set; } = "";
    /// <summary><c>kind: RevocationList</c>: client certificates refused at the handshake (needs <see cref="ClientCAFile"/>).</summary>
    public string RevocationFile { get; set; } = "";
    /// <summary>Added section: what a verified client certificate must also satisfy (its lifetime).</summary>
    public ClientCertificatesConfiguration ClientCertificates { get; set; } = new();
    /// <summary>Added field: how long a TLS handshake may take before the connection is closed (restart-required).</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TlsDefaults.HandshakeTimeout;
}

/// <summary><c>tls.clientCertificates</c>: the certificate-lifetime policy applied at the handshake.</summary>
public sealed class ClientCertificatesConfiguration
{
    /// <summary>
    /// The longest validity period (NotAfter − NotBefore) a client certificate may have: days (<c>90d</c>, or the bare
    /// number <c>90</c>) or a Go duration (<c>2160h</c>); read by <c>Portcullis.Tls.CertificateLifetime</c>. Empty: no limit.
    /// </summary>
    public string MaxLifetime { get; set; } = "";
    /// <summary>What a longer-lived certificate gets: <c>refuse</c> (the handshake fails) or <c>warn</c> (logged, counted, annotated).</summary>
    public string Action { get; set; } = CertificateLifetimeActions.Refuse;
}

public static class CertificateLifetimeActions
{
    public const string Refuse = "refuse";
    public const string Warn = "warn";
    public static readonly IReadOnlyList<string> All = [Refuse, Warn];
}

/// <summary>Defaults of the TLS fields the gateway added.</summary>
public static class TlsDefaults
{
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
}

public sealed class NetworkConfiguration
{
    public List<string> Allow { get; set; } = [];
    public List<string> Deny { get; set; } = [];
    /// <summary>Peers (CIDRs) whose X-Forwarded-For / Forwarded headers, and PROXY protocol header, are believed.</summary>
    public List<string> TrustedProxies { get; set; } = [];
    /// <summary>Connections from <see cref="TrustedProxies"/> start with a PROXY protocol v1/v2 header (required from them).</summary>
    public bool ProxyProtocol { get; set; }
    public AutoBanConfiguration AutoBan { get; set; } = new();
    /// <summary>Added section: how many connections one source address, and everyone together, may hold open.</summary>
    public ConnectionsConfiguration Connections { get; set; } = new();
}

/// <summary>
/// <c>network.connections</c>: concurrent connections per source address and in total, counted at accept (before TLS);
/// the connection over either limit is closed without a TLS byte and counted as refused.
/// </summary>
public sealed class ConnectionsConfiguration
{
    public const int DefaultMaxPerSource = 250;
    public const int DefaultMaxTotal = 10_000;

    public int MaxPerSource { get; set; } = DefaultMaxPerSource;
    public int MaxTotal { get; set; } = DefaultMaxTotal;
}

/// <summary><c>network.autoBan</c>: failed authentications (and, with <see cref="CountForbidden"/>, 403s) per source ban it.</summary>
public sealed class AutoBanConfiguration
{
    public bool Enabled { get; set; }
    public int Failures { get; set; } = 20;
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(60);
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(15);
    public TimeSpan MaxDuration { get; set; } = TimeSpan.FromHours(24);
    public string StateFile { get; set; } = "";
    /// <summary>CIDRs never banned and whose failures are not counted (e.g. the operator's own address).</summary>
    public List<string> NeverBan { get; set; } = [];
    /// <summary>Whether 403s (authorization and impersonation refusals) count as failures too.</summary>
    public bool CountForbidden { get; set; }
}

public sealed class AuthenticationConfiguration
{
    public AnonymousConfiguration Anonymous { get; set; } = new();
    public string TokenAuthFile { get; set; } = "";
    public ServiceAccountConfiguration ServiceAccount { get; set; } = new();
    public OidcConfiguration Oidc { get; set; } = new();
    public string AuthenticationConfigFile { get; set; } = "";
    public TokenWebhookConfiguration Webhook { get; set; } = new();
}

public sealed class AnonymousConfiguration
{
    public bool Enabled { get; set; }
    public List<string> Paths { get; set; } = [];
}

public sealed class ServiceAccountConfiguration
{
    public List<string> KeyFiles { get; set; } = [];
    public List<string> Issuers { get; set; } = [];
    public List<string> Audiences { get; set; } = [];
}

public sealed class OidcConfiguration
{
    public string IssuerURL { get; set; } = "";
    public string ClientID { get; set; } = "";
    public string UsernameClaim { get; set; } = "sub";
    /// <summary>Null when unset: kube-apiserver's default-prefix rule applies.</summary>
    public string? UsernamePrefix { get; set; }
    public string GroupsClaim { get; set; } = "";
    public string GroupsPrefix { get; set; } = "";
    public Dictionary<string, string> RequiredClaims { get; set; } = [];
    public string CaFile { get; set; } = "";
    public List<string> SigningAlgs { get; set; } = ["RS256"];
}

public sealed class TokenWebhookConfiguration
{
    public string ConfigFile { get; set; } = "";
    public TimeSpan CacheTTL { get; set; } = TimeSpan.FromMinutes(2);
    public string Version { get; set; } = "v1";
}

public sealed class AuthorizationConfiguration
{
    public List<string> Modes { get; set; } = ["RBAC"];
    public string DenyListFile { get; set; } = "";
    public RbacConfiguration Rbac { get; set; } = new();
    public AuthorizationWebhookConfiguration Webhook { get; set; } = new();
    public List<NetworkScopeConfiguration> NetworkScopes { get; set; } = [];
}

public static class AuthorizationModes
{
    public const string AlwaysAllow = "AlwaysAllow";
    public const string AlwaysDeny = "AlwaysDeny";
    public const string Rbac = "RBAC";
    public const string Webhook = "Webhook";
    public static readonly IReadOnlyList<string> All = [AlwaysAllow, AlwaysDeny, Rbac, Webhook];
}

public sealed class RbacConfiguration
{
    public List<string> Manifests { get; set; } = [];
}

public sealed class AuthorizationWebhookConfiguration
{
    public string ConfigFile { get; set; } = "";
    public TimeSpan AuthorizedTTL { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan UnauthorizedTTL { get; set; } = TimeSpan.FromSeconds(30);
    public string Version { get; set; } = "v1";
    /// <summary>Added field: NoOpinion (default, as kube-apiserver) or Deny.</summary>
    public string FailurePolicy { get; set; } = "NoOpinion";
    /// <summary>Added field: timeout of one SubjectAccessReview call.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
}

public sealed class NetworkScopeConfiguration
{
    public List<SubjectReference> Subjects { get; set; } = [];
    public List<string> Allow { get; set; } = [];
}

/// <summary>An RBAC-style subject: kind User, Group or ServiceAccount.</summary>
public sealed class SubjectReference
{
    public string Kind { get; set; } = "";
    public string Name { get; set; } = "";
    public string Namespace { get; set; } = "";
}

/// <summary>
/// L5: API Priority and Fairness (<c>priorityAndFairness</c>), EventRateLimit (<c>admissionControlConfigFile</c>), rate
/// limits (<c>rateLimits</c>) and caps on long-running requests (<c>longRunning</c>) are enforced; a <c>store</c> other
/// than <c>memory</c> is refused at load as not supported yet.
/// </summary>
public sealed class AdmissionConfiguration
{
    public string AdmissionControlConfigFile { get; set; } = "";
    public PriorityAndFairnessConfiguration PriorityAndFairness { get; set; } = new();
    public List<RateLimitConfiguration> RateLimits { get; set; } = [];
    /// <summary>Caps on concurrent long-running requests (watches, exec, attach, port-forward, proxy, logs).</summary>
    public LongRunningConfiguration LongRunning { get; set; } = new();
    public string Store { get; set; } = "memory";
}

public sealed class PriorityAndFairnessConfiguration
{
    public bool Enabled { get; set; } = true;
    public int MaxRequestsInflight { get; set; } = 400;
    public int MaxMutatingRequestsInflight { get; set; } = 200;
    public List<string> ConfigFiles { get; set; } = [];
    /// <summary>kube-apiserver's suggested FlowSchemas and PriorityLevelConfigurations besides the mandatory ones.</summary>
    public bool SuggestedObjects { get; set; } = true;
}

public sealed class RateLimitConfiguration
{
    public string Type { get; set; } = "";
    public double Qps { get; set; }
    public int Burst { get; set; }
    /// <summary>Keys kept (LRU) for a type other than Server; a key pushed out comes back with a full bucket.</summary>
    public int CacheSize { get; set; } = 4096;
}

public sealed class LongRunningConfiguration
{
    /// <summary>Open long-running requests one authenticated user may have; 0: no cap.</summary>
    public int MaxPerUser { get; set; }
}

public sealed class AuditConfiguration
{
    public string PolicyFile { get; set; } = "";
    public AuditLogConfiguration Log { get; set; } = new();
    public AuditWebhookConfiguration Webhook { get; set; } = new();
}

public sealed class AuditLogConfiguration
{
    public string Path { get; set; } = "";
    public int MaxAge { get; set; }
    public int MaxBackup { get; set; }
    public int MaxSize { get; set; }
    public string Mode { get; set; } = "blocking";
}

public sealed class AuditWebhookConfiguration
{
    public string ConfigFile { get; set; } = "";
    public string Mode { get; set; } = "batch";
}

public sealed class UpstreamConfiguration
{
    public string Kubeconfig { get; set; } = "";
    public string Context { get; set; } = "";
    public string Identity { get; set; } = UpstreamIdentityModes.Impersonate;
    /// <summary>Added field: how long a non-long-running request may wait for the upstream (504 after), as --request-timeout.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(60);
}

public static class UpstreamIdentityModes
{
    public const string Impersonate = "Impersonate";
    public const string RequestHeader = "RequestHeader";
    public const string Passthrough = "Passthrough";
    public static readonly IReadOnlyList<string> All = [Impersonate, RequestHeader, Passthrough];
}

public sealed class AdminConfiguration
{
    public const string DefaultAddress = "127.0.0.1:9095";
    public string Address { get; set; } = DefaultAddress;
    /// <summary>Added field: how long a graceful shutdown waits for in-flight requests.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(15);
    /// <summary>Added field: console log format, text or json.</summary>
    public string LogFormat { get; set; } = "text";
}

/// <summary>Added section <c>limits</c>: what a single request may carry, named after the kube-apiserver flags.</summary>
public sealed class LimitsConfiguration
{
    /// <summary>kube-apiserver's default <c>--max-request-body-bytes</c>: 3 MiB.</summary>
    public const int DefaultMaxRequestBodyBytes = 3 * 1024 * 1024;

    /// <summary>
    /// Added field, as <c>--max-request-body-bytes</c>: the largest request body of a request that is not long-running;
    /// a larger one is answered with kube-apiserver's 413 before anything is sent upstream. Also the largest object
    /// an audit event records.
    /// </summary>
    public int MaxRequestBodyBytes { get; set; } = DefaultMaxRequestBodyBytes;

    /// <summary>Kestrel's hard limit on header lines, set at start: past it Kestrel refuses before any gateway code runs.</summary>
    public const int KestrelMaxRequestHeaderCount = 2000;

    /// <summary>Kestrel's hard limit on the header block (and the HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE it advertises).</summary>
    public const int KestrelMaxRequestHeaderBytes = 256 * 1024;

    /// <summary>Added field: header lines a request may carry; more is answered with kube-apiserver's 431 (audited).</summary>
    public int MaxRequestHeaderCount { get; set; } = 100;

    /// <summary>Added field: bytes of request header lines (name, value and 4 bytes a line); more is answered 431 (audited).</summary>
    public int MaxRequestHeaderBytes { get; set; } = 64 * 1024;

    /// <summary>Added field: how long a client may take to send a request's headers (Kestrel RequestHeadersTimeout; restart-required).</summary>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Added section: the slowest a request body may arrive (not applied to long-running requests).</summary>
    public DataRateConfiguration MinRequestBodyDataRate { get; set; } = new();

    /// <summary>Added section: HTTP/2 limits.</summary>
    public Http2LimitsConfiguration Http2 { get; set; } = new();
}

/// <summary><c>limits.minRequestBodyDataRate</c>: bytes per second, averaged after a grace period.</summary>
public sealed class DataRateConfiguration
{
    public int BytesPerSecond { get; set; } = 240;
    public TimeSpan GracePeriod { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary><c>limits.http2</c>: limits of HTTP/2 connections (restart-required: Kestrel reads them at start).</summary>
public sealed class Http2LimitsConfiguration
{
    /// <summary>SETTINGS_MAX_CONCURRENT_STREAMS: streams one connection may have open at once (Kestrel MaxStreamsPerConnection).</summary>
    public int MaxConcurrentStreams { get; set; } = 250;

    /// <summary>
    /// Kestrel's rapid-reset limit (the process-wide AppContext switch
    /// <c>Microsoft.AspNetCore.Server.Kestrel.Http2.MaxEnhanceYourCalmCount</c>): once a connection tracks more than
    /// max(2 × maxConcurrentStreams, 100) streams, each new stream is refused with ENHANCE_YOUR_CALM, and more than 5 ×
    /// this many such refusals within Kestrel's 5-second window close the connection.
    /// </summary>
    public int MaxStreamRefusalsPerSecond { get; set; } = 20;
}

/// <summary>One configuration error: where (file:line, field) and what.</summary>
public sealed record ConfigError(string File, int Line, string Field, string Message)
{
    public override string ToString() =>
        Line > 0 ? $"{File}:{Line}: {Field}: {Message}" : $"{File}: {Field}: {Message}";
}

/// <summary>Thrown when a configuration cannot be loaded; carries every error found.</summary>
public sealed class ConfigurationException(IReadOnlyList<ConfigError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}
