using Portcullis.Configuration;

namespace Portcullis.Gateway.Hosting;

/// <summary>
/// <c>portcullis webhook</c> in-process (the CLI, the demo and tests): the TokenReview (<c>POST /authenticate</c>) and
/// SubjectAccessReview (<c>POST /authorize</c>) webhooks a kube-apiserver calls, on <c>listeners</c> over mTLS (only a
/// client certificate of <c>tls.clientCAFile</c> gets in), with the admin endpoints on <c>admin.address</c>. The same
/// configuration file, snapshots, hot reload, audit and metrics as <see cref="GatewayHost"/>; no upstream.
/// </summary>
public sealed class WebhookHost : IAsyncDisposable
{
    private readonly GatewayHost _host;

    private WebhookHost(GatewayHost host) => _host = host;

    /// <summary>
    /// Loads <paramref name="configPath"/> in webhook mode (fields that mean nothing there are refused) and builds the
    /// hosts; throws <see cref="ConfigurationException"/> listing every error.
    /// </summary>
    public static WebhookHost Create(string configPath, GatewayHostOptions? options = null) =>
        new(GatewayHost.Create(configPath, options, ConfigurationMode.Webhook));

    /// <summary>The bound HTTPS addresses after <see cref="StartAsync"/>; the webhooks are <c>{uri}authenticate</c> and <c>{uri}authorize</c>.</summary>
    public IReadOnlyList<Uri> ListenUris => _host.ListenUris;

    /// <summary>The bound admin address (<c>/metrics</c>, <c>/healthz</c>, <c>/readyz</c>) after <see cref="StartAsync"/>.</summary>
    public Uri? AdminUri => _host.AdminUri;

    /// <summary>The TokenReview webhook's URL on the first listener, after <see cref="StartAsync"/>.</summary>
    public Uri AuthenticateUri => new(ListenUris[0], "/authenticate");

    /// <summary>The SubjectAccessReview webhook's URL on the first listener, after <see cref="StartAsync"/>.</summary>
    public Uri AuthorizeUri => new(ListenUris[0], "/authorize");

    /// <summary>Reloads now; returns the errors, empty when the new configuration is serving.</summary>
    public IReadOnlyList<ConfigError> Reload() => _host.Reload();

    internal GatewayHost Gateway => _host;

    public Task StartAsync(CancellationToken cancellationToken = default) => _host.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken = default) => _host.StopAsync(cancellationToken);

    public ValueTask DisposeAsync() => _host.DisposeAsync();
}
