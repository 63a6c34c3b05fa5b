using Portcullis.Authorization;
using Portcullis.Configuration;

namespace Portcullis.Gateway.Snapshots;

/// <summary>
/// The one way a gateway configuration is loaded: read the file once, validate it (<see cref="ConfigurationLoader"/>),
/// then build the runtime snapshot from it (<see cref="GatewaySnapshot.Build"/>: certificates, keys, CA bundles, token
/// files, RBAC manifests, deny list, audit policy and backends, kubeconfigs, CEL). <c>serve</c>, every hot reload,
/// <c>validate</c>, <c>check --gateway</c> and <c>demo</c> call <see cref="Load"/>; <c>explain</c> and <c>who-can</c> call
/// <see cref="LoadAuthorization"/>, the same read and validation with the authorization chain built by the same code.
/// So a configuration <c>validate</c> accepts is one <c>serve</c> starts with, and both print the same errors.
/// </summary>
public static class GatewayConfigurationPipeline
{
    /// <summary>
    /// Loads <paramref name="path"/> as <c>portcullis serve</c> does, short of listening. When the file itself has
    /// errors those are all reported; when it has none, every error of the files it names is. Errors that point into
    /// the configuration file carry the line of their field.
    /// </summary>
    /// <remarks><paramref name="mode"/> <see cref="ConfigurationMode.Webhook"/> is <c>portcullis webhook</c>: no upstream, a
    /// required client CA, and the fields that mean nothing there refused (<c>ConfigurationMode</c>).</remarks>
    public static GatewayConfigurationLoad Load(string path, TimeProvider? time = null, Microsoft.Extensions.Logging.ILoggerFactory? loggers = null,
        ConfigurationMode mode = ConfigurationMode.Serve)
    {
        ArgumentNullException.ThrowIfNull(path);
        var errors = new List<ConfigError>();
        var config = ConfigurationLoader.Read(path, errors, mode);
        if (config is null || errors.Count > 0)
        {
            return new GatewayConfigurationLoad(Path.GetFullPath(path), null, Located(config, errors), mode);
        }
        var snapshot = GatewaySnapshot.Build(config, errors, time ?? TimeProvider.System, loggers);
        return new GatewayConfigurationLoad(config.SourcePath, snapshot, Located(config, errors), mode);
    }

    /// <summary>
    /// Loads <paramref name="path"/> for <c>explain</c> and <c>who-can</c>: the same read and validation as
    /// <see cref="Load"/>, of which only the errors of the document and of its <c>authorization</c> section count (a
    /// machine without the TLS and upstream files can still explain decisions), then the authorization chain, built
    /// as the snapshot builds it. The caller disposes the chain.
    /// </summary>
    public static (AuthorizerChain? Chain, IReadOnlyList<ConfigError> Errors) LoadAuthorization(string path, bool includeWebhook = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        var errors = new List<ConfigError>();
        var config = ConfigurationLoader.Read(path, errors);
        var relevant = errors.Where(e => e.Field is "(file)" or "(yaml)" or "(document)" or "apiVersion" or "kind"
            || e.Field.StartsWith("authorization", StringComparison.Ordinal)
            || e.Message.StartsWith("unknown field", StringComparison.Ordinal)).ToList();
        if (config is null || relevant.Count > 0)
        {
            return (null, Located(config, relevant));
        }
        var (chain, chainErrors) = AuthorizerChain.TryCreate(config, new AuthorizerChainOptions { IncludeWebhook = includeWebhook });
        return (chain, Located(config, chainErrors));
    }

    /// <summary>
    /// Loads <paramref name="path"/> for <c>explain</c>: <see cref="LoadAuthorization"/>'s chain plus API Priority and
    /// Fairness built as the snapshot builds it (<c>admission.priorityAndFairness</c>, its files, the mandatory and
    /// suggested objects). Errors of the <c>admission.priorityAndFairness</c> section and of its files count too.
    /// <c>Flowcontrol</c> is null when <c>PriorityAndFairnessEnabled</c> is false. The caller disposes the chain.
    /// </summary>
    public static (AuthorizerChain? Chain, Portcullis.Admission.Flowcontrol.FlowcontrolSystem? Flowcontrol, bool PriorityAndFairnessEnabled, IReadOnlyList<ConfigError> Errors)
        LoadExplain(string path, bool includeWebhook = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        var errors = new List<ConfigError>();
        var config = ConfigurationLoader.Read(path, errors);
        var relevant = errors.Where(e => e.Field is "(file)" or "(yaml)" or "(document)" or "apiVersion" or "kind"
            || e.Field.StartsWith("authorization", StringComparison.Ordinal)
            || e.Field.StartsWith("admission.priorityAndFairness", StringComparison.Ordinal)
            || e.Message.StartsWith("unknown field", StringComparison.Ordinal)).ToList();
        if (config is null || relevant.Count > 0)
        {
            return (null, null, false, Located(config, relevant));
        }
        var apfErrors = new List<ConfigError>();
        var flowcontrol = GatewaySnapshot.BuildFlowcontrol(config, TimeProvider.System, apfErrors, watched: null);
        if (apfErrors.Count > 0)
        {
            return (null, null, false, Located(config, apfErrors));
        }
        var (chain, chainErrors) = AuthorizerChain.TryCreate(config, new AuthorizerChainOptions { IncludeWebhook = includeWebhook });
        return (chain, flowcontrol, config.Admission.PriorityAndFairness.Enabled, Located(config, chainErrors));
    }

    /// <summary>Gives an error about the configuration file that was raised without a line the line of its field.</summary>
    private static IReadOnlyList<ConfigError> Located(GatewayConfiguration? config, IReadOnlyList<ConfigError> errors) =>
        config is null
            ? errors
            : [.. errors.Select(e => e.Line == 0 && e.File == config.SourcePath ? e with { Line = config.LineOf(e.Field) } : e)];
}

/// <summary>
/// The outcome of <see cref="GatewayConfigurationPipeline.Load"/>: the configuration and the runtime snapshot built from
/// it, or every error. Disposing releases what the snapshot holds (authenticators, authorizers, the upstream client)
/// unless the gateway took it to serve.
/// </summary>
public sealed class GatewayConfigurationLoad : IDisposable
{
    private GatewaySnapshot? _snapshot;

    internal GatewayConfigurationLoad(string path, GatewaySnapshot? snapshot, IReadOnlyList<ConfigError> errors, ConfigurationMode mode = ConfigurationMode.Serve)
    {
        Mode = mode;
        Path = path;
        _snapshot = snapshot;
        Errors = errors;
        IsValid = snapshot is not null && errors.Count == 0;
        Configuration = IsValid ? snapshot!.Config : null;
        AuditPolicy = IsValid ? snapshot!.AuditPolicy : null;
    }

    /// <summary>What the configuration was loaded for (a reload loads it the same way).</summary>
    public ConfigurationMode Mode { get; }

    /// <summary>The absolute path of the configuration file.</summary>
    public string Path { get; }

    /// <summary>True when the configuration would be served: no error anywhere.</summary>
    public bool IsValid { get; }

    /// <summary>The validated configuration, when <see cref="IsValid"/>.</summary>
    public GatewayConfiguration? Configuration { get; }

    /// <summary>The audit policy the snapshot parsed, when <see cref="IsValid"/> and <c>audit.policyFile</c> is set (<c>check --gateway</c> scores it).</summary>
    public Portcullis.Audit.AuditPolicy? AuditPolicy { get; }

    /// <summary>Every error, each with file, line (when known), field and message; empty when valid.</summary>
    public IReadOnlyList<ConfigError> Errors { get; }

    /// <summary>Hands the snapshot to the caller, who then owns it (the gateway's snapshot holder).</summary>
    internal GatewaySnapshot TakeSnapshot()
    {
        var snapshot = _snapshot ?? throw new InvalidOperationException("no snapshot to take: the configuration has errors or was taken already");
        _snapshot = null;
        return snapshot;
    }

    public void Dispose()
    {
        _snapshot?.Dispose();
        _snapshot = null;
    }
}
