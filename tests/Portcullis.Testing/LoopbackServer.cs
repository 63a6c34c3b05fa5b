using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Portcullis.Testing;

/// <summary>
/// TLS for a <see cref="LoopbackServer"/>: the server certificate (e.g. from <see cref="TestPki"/>), whether a client
/// certificate is asked for or required, and which CA it must chain to.
/// </summary>
public sealed record LoopbackTls(X509Certificate2 Certificate)
{
    /// <summary>Sent after the server certificate (intermediates or the CA itself).</summary>
    public IReadOnlyList<X509Certificate2> Chain { get; init; } = [];

    /// <summary>Whether the server asks for a client certificate (<see cref="ClientCertificateMode.AllowCertificate"/>) or requires one.</summary>
    public ClientCertificateMode ClientCertificates { get; init; } = ClientCertificateMode.NoCertificate;

    /// <summary>The CA a client certificate must chain to (no revocation check); null accepts any certificate the client sends.</summary>
    public X509Certificate2? ClientCa { get; init; }

    /// <summary>Last say over the HTTPS options (protocol versions, cipher suites) for servers that must be weak on purpose.</summary>
    public Action<HttpsConnectionAdapterOptions>? Configure { get; init; }

    internal HttpsConnectionAdapterOptions ToHttpsOptions()
    {
        var https = new HttpsConnectionAdapterOptions
        {
            ServerCertificate = Certificate,
            ServerCertificateChain = Chain.Count == 0 ? null : [.. Chain],
            ClientCertificateMode = ClientCertificates,
            ClientCertificateValidation = (certificate, _, _) => ClientCa is null || ChainsTo(certificate, ClientCa),
        };
        Configure?.Invoke(https);
        return https;
    }

    private static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }
}

/// <summary>
/// A real Kestrel server on 127.0.0.1:0 (HTTP, or HTTPS with <see cref="LoopbackTls"/>) that runs one request handler,
/// for the stand-in servers of the tests (webhooks, JWKS endpoints, API servers, upstreams). Each keeps its own recording
/// behaviour in its handler; this is the one place that builds, starts, addresses and stops the server.
/// </summary>
public sealed class LoopbackServer : IAsyncDisposable
{
    /// <summary>How long starting or stopping may take.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly WebApplication _app;
    private int _disposed;

    private LoopbackServer(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>The bound address, <c>http(s)://127.0.0.1:port/</c>.</summary>
    public Uri Url { get; }

    /// <summary>
    /// Starts the server. <paramref name="pipeline"/> adds middleware before <paramref name="handler"/> (e.g. WebSockets
    /// or a recorder). The host watches no files: the gateway's configuration-watcher tests count the whole process's watches.
    /// </summary>
    public static async Task<LoopbackServer> StartAsync(RequestDelegate handler, LoopbackTls? tls = null,
        Action<IApplicationBuilder>? pipeline = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (tls is not null)
            {
                listen.UseHttps(tls.ToHttpsOptions());
            }
        }));
        var app = builder.Build();
        try
        {
            pipeline?.Invoke(app);
            app.Run(handler);
            await app.StartAsync(cancellationToken).WaitAsync(Timeout, cancellationToken);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            var port = new Uri(address).Port;
            return new LoopbackServer(app, new Uri($"{(tls is null ? "http" : "https")}://127.0.0.1:{port}/"));
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the server (open requests are cancelled after <see cref="Timeout"/>); a second call does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            await _app.StopAsync(cts.Token).WaitAsync(Timeout);
        }
        finally
        {
            await _app.DisposeAsync();
        }
    }
}
