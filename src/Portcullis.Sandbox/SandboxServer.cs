using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Portcullis.Sandbox.Diagnostics;
using Portcullis.Sandbox.Security;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox;

/// <summary>
/// An in-memory Kubernetes-style API server over HTTPS, for demos and tests. It is not a cluster:
/// nothing runs, and it enforces no RBAC of its own — any client certificate from its CA may do anything.
/// </summary>
public sealed class SandboxServer : IAsyncDisposable
{
    /// <summary>The user recorded as creator of seeded objects.</summary>
    public const string SeedUser = "system:sandbox-seed";

    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping;
    private int _stopped;

    private SandboxServer(WebApplication app, CancellationTokenSource stopping, ObjectStore store, RequestLog requests, Uri uri, ApiServerSecurity? security)
    {
        _app = app;
        Security = security;
        _stopping = stopping;
        Store = store;
        Requests = requests;
        Uri = uri;
    }

    /// <summary>The base address, e.g. https://127.0.0.1:40123/ (an any-address bind is reported as loopback).</summary>
    public Uri Uri { get; }

    /// <summary>The bound TCP port.</summary>
    public int Port => Uri.Port;

    /// <summary>The objects the sandbox serves; writes here are seen by watches like API writes.</summary>
    public ObjectStore Store { get; }

    /// <summary>The most recent requests, as <c>GET /sandbox/requests</c> reports them.</summary>
    public RequestLog Requests { get; }

    /// <summary>Webhook mode's authentication and authorizers; null when the sandbox believes what it is told.</summary>
    internal ApiServerSecurity? Security { get; }

    /// <summary>Webhook mode's authorizers in the order they are asked (empty otherwise), e.g. system:masters, Webhook, RBAC.</summary>
    public IReadOnlyList<string> AuthorizerNames => Security is null ? [] : [.. Security.Authorizers.Authorizers.Select(a => a.Name)];

    /// <summary>
    /// Starts Kestrel and returns once it is listening. Without <see cref="SandboxOptions.Security"/> every connection must
    /// present a client certificate from the client CA; in webhook mode a certificate is optional (tokens authenticate
    /// too) but one that does not chain to the client CA still fails the handshake. Webhook mode's configuration errors
    /// are a <see cref="Configuration.ConfigurationException"/> naming every problem.
    /// </summary>
    public static async Task<SandboxServer> StartAsync(SandboxOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.ServerCertificate.HasPrivateKey)
        {
            throw new ArgumentException("the sandbox server certificate has no private key", nameof(options));
        }
        if (options.ClientCA.Count == 0)
        {
            throw new ArgumentException("the sandbox needs at least one client CA certificate", nameof(options));
        }
        var security = options.Security is { } securityOptions ? ApiServerSecurity.Create(securityOptions, options.TimeProvider) : null;
        var store = new ObjectStore(options.TimeProvider);
        var requests = new RequestLog(options.RequestLogCapacity);
        var stopping = new CancellationTokenSource();
        var roots = new X509Certificate2Collection(options.ClientCA);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // No host file watching: a recursive watch of the working directory would wake the process for every
            // write below it (the demo keeps its audit log there); the sandbox reads no appsettings.json either.
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(options.ListenAddress, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = options.ServerCertificate,
                    SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    ClientCertificateMode = security is null ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.AllowCertificate,
                    ClientCertificateValidation = (certificate, _, _) => ChainsTo(certificate, roots),
                });
            });
        });
        var app = builder.Build();
        var pipeline = new SandboxApplication(store, requests, options, stopping.Token, security);
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.Run(pipeline.InvokeAsync);
        if (options.Seed)
        {
            Seeding.SeedDefaults(store);
        }
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            // Address in use, cancelled, bad certificate: release what was built before reporting it.
            await app.DisposeAsync();
            stopping.Dispose();
            security?.Dispose();
            throw;
        }

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var bound = new Uri(address);
        var host = options.ListenAddress.Address switch
        {
            var a when a.Equals(IPAddress.Any) => "127.0.0.1",
            var a when a.Equals(IPAddress.IPv6Any) => "[::1]",
            var a when a.AddressFamily == AddressFamily.InterNetworkV6 => "[" + a + "]",
            var a => a.ToString(),
        };
        return new SandboxServer(app, stopping, store, requests, new Uri($"https://{host}:{bound.Port}/"), security);
    }

    /// <summary>Creates the demo objects: namespaces dev, prod, kube-system, default; pods in dev and prod; a secret in prod; a configmap in dev.</summary>
    public void SeedDefaults() => Seeding.SeedDefaults(Store);

    /// <summary>Stores any supported object, found by its apiVersion and kind; namespaced objects name their namespace in metadata.</summary>
    public JsonObject CreateObject(JsonObject obj, string createdBy = SeedUser)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var apiVersion = obj["apiVersion"]?.GetValue<string>() ?? "";
        var kind = obj["kind"]?.GetValue<string>() ?? "";
        var type = ResourceTypes.FindByKind(apiVersion, kind)
            ?? throw new ArgumentException($"the sandbox does not serve {apiVersion} {kind}", nameof(obj));
        return Store.Create(type, obj["metadata"]?["namespace"]?.GetValue<string>(), obj, createdBy);
    }

    /// <summary>Creates a namespace.</summary>
    public JsonObject AddNamespace(string name, IReadOnlyDictionary<string, string>? labels = null) =>
        Seeding.Namespace(Store, name, labels);

    /// <summary>Creates a running pod with one container named "main".</summary>
    public JsonObject AddPod(string @namespace, string name, IReadOnlyDictionary<string, string>? labels = null) =>
        Seeding.Pod(Store, @namespace, name, labels);

    /// <summary>Creates a configmap.</summary>
    public JsonObject AddConfigMap(string @namespace, string name, IReadOnlyDictionary<string, string> data) =>
        Seeding.ConfigMap(Store, @namespace, name, data);

    /// <summary>Creates an Opaque secret; values are given in clear and stored base64-encoded.</summary>
    public JsonObject AddSecret(string @namespace, string name, IReadOnlyDictionary<string, string> data) =>
        Seeding.Secret(Store, @namespace, name, data);

    /// <summary>Stops listening; open watches, log follows and exec sessions end.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync();
        await _app.StopAsync(cancellationToken);
    }

    /// <summary>Stops the server (waiting at most 10 seconds for open requests) and releases it.</summary>
    public async ValueTask DisposeAsync()
    {
        using (var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await StopAsync(bound.Token);
        }
        await _app.DisposeAsync();
        _stopping.Dispose();
        Security?.Dispose();
    }

    private static bool ChainsTo(X509Certificate2 certificate, X509Certificate2Collection roots)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        // Client certificates must be usable for client authentication (or carry no EKU at all).
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2"));
        try
        {
            return chain.Build(certificate);
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                element.Certificate.Dispose();
            }
        }
    }
}
