using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Portcullis.Audit;
using Portcullis.Configuration;
using Portcullis.Gateway.Admin;
using Portcullis.Gateway.Admission;
using Portcullis.Gateway.Audit;
using Portcullis.Gateway.Authentication;
using Portcullis.Gateway.Authorization;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Forwarding;
using Portcullis.Gateway.Http;
using Portcullis.Gateway.Network;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Snapshots;
using Portcullis.Gateway.Streams;
using Portcullis.Gateway.Tls;

namespace Portcullis.Gateway.Hosting;

/// <summary>Options for hosting the gateway in-process (the CLI, the demo and tests).</summary>
public sealed class GatewayHostOptions
{
    /// <summary>Replaces every listener address (e.g. 127.0.0.1:0 in tests); null keeps the configuration's.</summary>
    public string? ListenOverride { get; init; }
    /// <summary>Replaces admin.address; null keeps the configuration's.</summary>
    public string? AdminOverride { get; init; }
    /// <summary>Quiet period before a changed file is reloaded.</summary>
    public TimeSpan ReloadDelay { get; init; } = TimeSpan.FromMilliseconds(300);
    /// <summary>How often watched files are checked for in-place writes (renames and creations are seen at once).</summary>
    public TimeSpan ReloadPollInterval { get; init; } = ConfigurationWatcher.DefaultPollInterval;
    public TimeSpan UpstreamProbeInterval { get; init; } = TimeSpan.FromSeconds(5);
    public LogLevel MinimumLogLevel { get; init; } = LogLevel.Information;
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// <c>portcullis serve</c>: the HTTPS gateway on <c>listeners[]</c> and the plain-HTTP admin endpoints on <c>admin.address</c>.
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly WebApplication _admin;
    private readonly SnapshotHolder _snapshots;
    private readonly ConfigurationWatcher _watcher;
    private readonly UpstreamProbe _probe;
    private readonly StreamRegistry _streams;
    private readonly ILogger _logger;
    private readonly IReadOnlyList<string> _listenAddresses;
    private readonly ILoggerFactory _logs;
    private Portcullis.Gateway.Diagnostics.LateLoggerFactory? _coreLogs;
    private GatewayMetrics? _metrics;
    private BorrowingTimer? _borrowing;

    /// <summary>Runs the borrowing between the priority levels of the configuration now serving, and shows its limits.</summary>
    private sealed class BorrowingTimer(GatewayMetrics metrics) : IDisposable
    {
        private readonly object _lock = new();
        private ITimer? _timer;

        public void Serve(Portcullis.Admission.Flowcontrol.FlowcontrolSystem? system)
        {
            lock (_lock)
            {
                _timer?.Dispose();
                _timer = null;
                if (system is not null)
                {
                    metrics.Flowcontrol.Limits(system);
                    _timer = system.StartBorrowing(metrics.Flowcontrol.Limits);
                }
            }
        }

        public void Dispose() => Serve(null);
    }
    private bool _started;
    private SourceBans? _bans;
    private RefusalLogSampler? _sampler;
    private ConnectionFilter? _filter;
    private bool _webhook;

    /// <summary>Kestrel's process-wide rapid-reset switch (read once, when Kestrel first opens an HTTP/2 connection).</summary>
    internal const string StreamRefusalLimitSwitch = "Microsoft.AspNetCore.Server.Kestrel.Http2.MaxEnhanceYourCalmCount";

    private GatewayHost(WebApplication app, WebApplication admin, SnapshotHolder snapshots, ConfigurationWatcher watcher,
        UpstreamProbe probe, StreamRegistry streams, ILogger logger, IReadOnlyList<string> listenAddresses, ILoggerFactory logs)
    {
        _logs = logs;
        _app = app;
        _admin = admin;
        _snapshots = snapshots;
        _watcher = watcher;
        _probe = probe;
        _streams = streams;
        _logger = logger;
        _listenAddresses = listenAddresses;
    }

    /// <summary>The bound HTTPS addresses (real ports when 0 was asked for), after <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<Uri> ListenUris { get; private set; } = [];

    /// <summary>The bound admin address, after <see cref="StartAsync"/>.</summary>
    public Uri? AdminUri { get; private set; }

    /// <summary>Reloads now (tests and SIGHUP-like triggers); returns the errors, empty when the new config is serving.</summary>
    public IReadOnlyList<ConfigError> Reload() => _snapshots.Reload();

    internal SnapshotHolder Snapshots => _snapshots;
    internal SourceBans? Bans => _bans;
    internal StreamRegistry Streams => _streams;
    internal Task FirstUpstreamProbe => _probe.FirstProbe;
    internal ConnectionFilter? Filter => _filter;

    /// <summary>
    /// limits.http2.maxStreamRefusalsPerSecond: Kestrel reads its switch into a static field when the first HTTP/2
    /// connection of the process is handled, so it is set here, before the listener starts. A second host in the same
    /// process (tests) cannot change it: a different value is reported, not silently assumed.
    /// </summary>
    private static void SetStreamRefusalLimit(int limit, ILogger logger)
    {
        lock (StreamRefusalLimitGate)
        {
            if (AppContext.GetData(StreamRefusalLimitSwitch) is int set && s_streamRefusalLimitApplied && set != limit)
            {
                Log.StreamRefusalLimitFixed(logger, limit, set);
                return;
            }
            AppContext.SetData(StreamRefusalLimitSwitch, limit);
            s_streamRefusalLimitApplied = true;
        }
    }

    private static readonly Lock StreamRefusalLimitGate = new();
    private static bool s_streamRefusalLimitApplied;

    /// <summary>
    /// Loads the configuration through <see cref="GatewayConfigurationPipeline.Load"/> (as <c>portcullis validate</c>
    /// does) and builds the hosts; throws <see cref="ConfigurationException"/> listing every error.
    /// </summary>
    public static GatewayHost Create(string configPath, GatewayHostOptions? options = null) => Create(configPath, options, ConfigurationMode.Serve);

    /// <summary>
    /// The host of <c>serve</c> or, with <see cref="ConfigurationMode.Webhook"/>, of <c>portcullis webhook</c>
    /// (<see cref="WebhookHost"/>): the same listeners, TLS (a client certificate required), snapshots, reload, audit and
    /// metrics, with the review endpoints (<c>Webhook/</c>) in place of the authorization, admission and forwarding stages.
    /// </summary>
    internal static GatewayHost Create(string configPath, GatewayHostOptions? options, ConfigurationMode mode)
    {
        options ??= new GatewayHostOptions();
        var webhook = mode == ConfigurationMode.Webhook;
        var coreLogs = new Portcullis.Gateway.Diagnostics.LateLoggerFactory();
        using var load = GatewayConfigurationPipeline.Load(configPath, options.Time, coreLogs, mode: mode);
        if (!load.IsValid)
        {
            throw new ConfigurationException(load.Errors);
        }
        var metrics = new GatewayMetrics(); // owns the host's meter and listener: made once the configuration is valid
        // One logger factory for the host's own components (the ASP.NET hosts configure theirs the same way).
        var logFormat = load.Configuration!.Admin.LogFormat;
        var logs = LoggerFactory.Create(b => ConfigureLogging(b, logFormat, options.MinimumLogLevel));
        coreLogs.Bind(logs);
        var auditLogger = logs.CreateLogger("Portcullis.Audit");
        // Each snapshot's audit backends are opened from its plan (read and checked by the pipeline): a reload that changes
        // them opens new ones, and the old ones write what was begun on them before they close. Reloads build their chains
        // with coreLogs too: a reload still running when the host is disposed must not touch the disposed factory.
        var snapshots = SnapshotHolder.Create(load, metrics, logs.CreateLogger("Portcullis.Configuration"), options.Time,
            plan => AuditSink.Create(plan, metrics.Audit, e => Log.AuditBackendFailed(auditLogger, e.Plugin, e.Events, e.Message), options.Time),
            coreLogs);
        var snapshot = snapshots.Current;
        var listen = options.ListenOverride is { } o
            ? [o]
            : snapshot.Config.Listeners.Count == 0 ? [ListenerConfiguration.DefaultAddress] : snapshot.Config.Listeners.Select(l => l.Address).ToList();
        var adminAddress = options.AdminOverride ?? snapshot.Config.Admin.Address;
        var streams = new StreamRegistry();
        var logger = logs.CreateLogger("Portcullis.Gateway");
        // network.autoBan: one banner for the host's life (reloads keep it); a corrupt state file refuses the start.
        SourceBans bans;
        try
        {
            bans = SourceBans.Create(snapshot.Config, snapshots, metrics, logger, options.Time);
        }
        catch (ConfigurationException)
        {
            // Nothing has served: close the audit backends the first snapshot opened, the meter listener and the loggers.
            using (var deadline = new CancellationTokenSource(snapshot.Config.Admin.DrainTimeout, options.Time))
            {
                snapshots.RetireAllAsync(deadline.Token).ContinueWith(static _ => { }, TaskScheduler.Default).Wait(CancellationToken.None);
            }
            metrics.Dispose();
            coreLogs.Bind(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
            logs.Dispose();
            throw;
        }

        var builder = WebApplication.CreateSlimBuilder(HostOptionsWithoutFiles());
        ConfigureLogging(builder.Logging, snapshot.Config.Admin.LogFormat, options.MinimumLogLevel);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = snapshot.Config.Admin.DrainTimeout);
        builder.Services.AddSingleton(snapshots);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton(streams);
        builder.Services.AddSingleton(bans);
        builder.Services.AddSingleton<Refusals>();
        builder.Services.AddSingleton<Portcullis.Admission.RateLimiting.LongRunningCounter>(); // open streams outlive a reload
        builder.Services.AddSingleton(options.Time);
        if (!webhook)
        {
            builder.Services.AddHttpForwarder();
            builder.Services.AddSingleton<ForwardingHandler>();
        }

        var sampler = new RefusalLogSampler(logger, options.Time);
        var filter = new ConnectionFilter(snapshots, bans, metrics, logger, sampler);
        var limits = snapshot.Config.Limits;
        var tls = new TlsHandshake(snapshots, new CertificateConnections(), metrics, logger, sampler, snapshot.Config.Tls!.HandshakeTimeout,
            requireClientCertificate: webhook);
        SetStreamRefusalLimit(limits.Http2.MaxStreamRefusalsPerSecond, logger);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Kestrel's own header limits are hard stops before any middleware (unaudited); the gateway's lower ones
            // (limits.maxRequestHeaderCount/Bytes) are checked by RequestStartMiddleware, which audits the 431.
            kestrel.Limits.MaxRequestHeadersTotalSize = LimitsConfiguration.KestrelMaxRequestHeaderBytes;
            kestrel.Limits.MaxRequestHeaderCount = LimitsConfiguration.KestrelMaxRequestHeaderCount;
            // One HTTP/2 header field may be as large as the whole block (HTTP/1.1 has no separate field limit), so a
            // large field over limits.maxRequestHeaderBytes gets the gateway's 431 instead of an HPACK connection error.
            kestrel.Limits.Http2.MaxRequestHeaderFieldSize = LimitsConfiguration.KestrelMaxRequestHeaderBytes;
            // network.connections is enforced by the ConnectionFilter (reloadable); these are Kestrel's, read at start.
            kestrel.Limits.RequestHeadersTimeout = limits.RequestHeadersTimeout;
            kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(limits.MinRequestBodyDataRate.BytesPerSecond, limits.MinRequestBodyDataRate.GracePeriod);
            kestrel.Limits.Http2.MaxStreamsPerConnection = limits.Http2.MaxConcurrentStreams;
            foreach (var address in listen)
            {
                var endpoint = Endpoint(address, "listeners[].address");
                kestrel.Listen(endpoint, lo =>
                {
                    lo.Protocols = HttpProtocols.Http1AndHttp2;
                    lo.Use(filter.Wrap); // L1 runs before the TLS handshake
                    lo.UseHttps(tls.Options); // L2
                    lo.Use(tls.Track); // L2: client-certificate connections, closed when a reload revokes their certificate
                });
            }
        });
        var app = builder.Build();
        app.UseWebSockets(); // lets HTTP/2 WebSocket (RFC 8441) requests reach YARP, which upgrades upstream over HTTP/1.1
        var audit = ActivatorUtilities.CreateInstance<AuditMiddleware>(app.Services);
        app.Use(audit.Wrap); // L6 wraps everything so every outcome is measured and audited
        app.UseMiddleware<RequestStartMiddleware>();
        app.UseMiddleware<AuthenticationMiddleware>(); // L3
        app.Use(audit.Begin); // L6: audit starts for the authenticated user
        if (webhook)
        {
            // portcullis webhook: the caller is the API server (its client certificate); the reviews are answered here.
            var reviews = ActivatorUtilities.CreateInstance<Portcullis.Gateway.Webhook.WebhookEndpoint>(app.Services);
            app.Run(reviews.InvokeAsync);
        }
        else
        {
            app.UseMiddleware<ImpersonationMiddleware>(); // L4: kubectl --as, checked before APF as kube-apiserver does
            app.UseMiddleware<RateLimitMiddleware>(); // L5: admission.rateLimits and admission.longRunning, before APF takes a seat
            app.UseMiddleware<PriorityAndFairnessMiddleware>(); // L5: API Priority and Fairness, between impersonation and authorization as in kube-apiserver
            app.UseMiddleware<AuthorizationMiddleware>(); // L4
            app.UseMiddleware<RequestBodyMiddleware>(); // the body read whole (limits.maxRequestBodyBytes) where kube-apiserver's handler reads it
            app.UseMiddleware<SelfSubjectAccessReviewMiddleware>(); // L4: kubectl auth can-i answers with the gateway's decision too
            app.UseMiddleware<SelfSubjectRulesReviewMiddleware>(); // L4: kubectl auth can-i --list answered from the gateway's own rules
            app.UseMiddleware<AdmissionMiddleware>(); // L5
            var forwarding = app.Services.GetRequiredService<ForwardingHandler>();
            app.Run(forwarding.InvokeAsync);
        }

        var probe = new UpstreamProbe(snapshots, metrics, logger, options.UpstreamProbeInterval, options.Time);
        var adminBuilder = WebApplication.CreateSlimBuilder(HostOptionsWithoutFiles());
        ConfigureLogging(adminBuilder.Logging, snapshot.Config.Admin.LogFormat, LogLevel.Warning);
        adminBuilder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(Endpoint(adminAddress, "admin.address"));
        });
        var admin = adminBuilder.Build();
        AdminEndpoints.Map(admin, snapshots, probe, metrics, bans);

        // The Swapped handlers run in this order, on the reloading thread, right after the new snapshot is in force. The
        // closes come first, so that nothing else (the watcher re-arming its file watches) stands between the swap and them:
        // a certificate newly on tls.revocationFile loses its open connections (and every stream on them), and a stolen
        // credential or user added to the deny list loses its open watches and exec/attach/log streams — those it opened as
        // someone else (kubectl --as) included, as its new requests are refused at the impersonation check.
        snapshots.Swapped += tls.CloseRevoked;
        snapshots.Swapped += s => streams.Close(f => f.Authenticated is { } a && s.Authorizer.DenyList is { } deny
            && (deny.Match(a.Attributes(f.RequestInfo)) is not null || (a.ImpersonatedUser is not null && deny.Match(a.RequestorAttributes(f.RequestInfo)) is not null)));
        // L5: the limits of the priority levels now serving, as apiserver_flowcontrol_*_limit_seats, and the borrowing
        // between them every 10 s (the configuration now serving only; a retired one keeps its last limits while it drains).
        var borrowing = new BorrowingTimer(metrics);
        borrowing.Serve(snapshots.Current.Flowcontrol);
        snapshots.Swapped += s => borrowing.Serve(s.Flowcontrol);
        var watcher = new ConfigurationWatcher(snapshots, options.ReloadDelay, options.ReloadPollInterval, options.Time);
        return new GatewayHost(app, admin, snapshots, watcher, probe, streams, logger, listen, logs) { _coreLogs = coreLogs, _metrics = metrics, _bans = bans, _sampler = sampler, _filter = filter, _borrowing = borrowing, _webhook = webhook };
    }

    /// <summary>
    /// Builder options for both listeners: the gateway reads only its own configuration, so the content root is the
    /// program's folder (an <c>appsettings.json</c> in the working directory changes nothing) and the host does not
    /// watch it for changes (a recursive watch of the working directory would wake the process for every write below
    /// it, audit log lines included).
    /// </summary>
    internal static WebApplicationOptions HostOptionsWithoutFiles() => new()
    {
        Args = ["--hostBuilder:reloadConfigOnChange=false"],
        ContentRootPath = AppContext.BaseDirectory,
    };

    /// <summary>Starts both listeners; if either cannot bind, neither is left running.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await _app.StartAsync(cancellationToken);
        }
        catch (IOException ex)
        {
            throw new GatewayStartException($"cannot listen on {string.Join(", ", _listenAddresses)}: {ex.GetBaseException().Message}", ex);
        }
        try
        {
            await _admin.StartAsync(cancellationToken);
        }
        catch (IOException ex)
        {
            await _app.StopAsync(CancellationToken.None);
            throw new GatewayStartException($"cannot listen on admin.address {_snapshots.Current.Config.Admin.Address}: {ex.GetBaseException().Message}", ex);
        }
        _started = true;
        ListenUris = [.. Addresses(_app).Select(a => new Uri(a))];
        AdminUri = Addresses(_admin).Select(a => new Uri(a)).First();
        foreach (var uri in ListenUris)
        {
            if (_webhook)
            {
                Log.WebhookListening(_logger, uri.Authority);
            }
            else
            {
                Log.Listening(_logger, uri.Authority);
            }
        }
        Log.AdminListening(_logger, AdminUri.Authority);
        _probe.Start();
        _app.Lifetime.ApplicationStopping.Register(CloseStreams);
    }

    private void CloseStreams()
    {
        var closed = _streams.Close(_ => true);
        if (closed > 0)
        {
            Log.StreamsClosed(_logger, closed);
        }
    }

    /// <summary>Graceful stop: no new connections, in-flight requests drain up to admin.drainTimeout, open streams close.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (!_started)
        {
            return;
        }
        _started = false;
        Log.Draining(_logger, _snapshots.Current.Config.Admin.DrainTimeout.TotalSeconds);
        _watcher.Dispose();
        await _app.StopAsync(cancellationToken);
        _bans?.Dispose(); // the bans in force are written to network.autoBan.stateFile
        // Every accepted request has completed or been cut off: every snapshot's audit sink writes its batches and closes.
        await RetireSnapshotsAsync();
        await _probe.DisposeAsync();
        _borrowing?.Dispose();
        await _admin.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _watcher.Dispose();
        await _app.DisposeAsync();
        await _admin.DisposeAsync();
        _bans?.Dispose();
        await RetireSnapshotsAsync(); // (never started: nothing was written, but the backends close)
        _sampler?.Dispose(); // pending "suppressed" summaries are written before the loggers close
        _borrowing?.Dispose();
        _metrics?.Dispose();
        _coreLogs?.Bind(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        _logs.Dispose();
    }

    private async Task RetireSnapshotsAsync()
    {
        using var deadline = new CancellationTokenSource(_snapshots.Current.Config.Admin.DrainTimeout, _snapshots.Current.Time);
        try
        {
            await _snapshots.RetireAllAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            // Each sink counted what it could not write as dropped (apiserver_audit_error_total / events dropped).
        }
    }

    private static IEnumerable<string> Addresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];

    private static IPEndPoint Endpoint(string address, string field) =>
        ConfigurationLoader.TryParseEndpoint(address, out var endpoint)
            ? endpoint
            : throw new ConfigurationException([new ConfigError("(command line)", 0, field, $"\"{address}\" is not host:port")]);

    internal static void ConfigureLogging(ILoggingBuilder logging, string format, LogLevel minimum)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(minimum);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        // A failed bind is reported once, by the caller, as one line naming the address: no stack trace on the console.
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        logging.AddFilter("Yarp", LogLevel.Warning);
        // YARP logs each forwarding error with its exception; ForwardingHandler logs the same error once, with the request
        // and the reason (event 10), so YARP's copy would only repeat it.
        logging.AddFilter("Yarp.ReverseProxy.Forwarder.HttpForwarder", LogLevel.None);
        if (format == "json")
        {
            logging.AddJsonConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ");
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            });
        }
        // Never a stack trace: an exception a framework category logs (Kestrel, ASP.NET Core) ends its line as type: message.
        OneLineExceptionLoggerProvider.WrapConsole(logging);
    }
}

/// <summary>The gateway could not start (a port in use, say); the message says which address.</summary>
public sealed class GatewayStartException(string message, Exception inner) : Exception(message, inner);
