using System.Net.Http.Headers;
using Portcullis.Configuration;
using Portcullis.Kubeconfig;

namespace Portcullis.Audit;

/// <summary>Settings of the webhook backend (<c>audit.webhook</c>, kube-apiserver's <c>--audit-webhook-*</c> flags).</summary>
public sealed record AuditWebhookOptions
{
    /// <summary>A kubeconfig naming the receiver (cluster server and CA) and the gateway's credentials (user).</summary>
    public required string KubeconfigPath { get; init; }

    public AuditMode Mode { get; init; } = AuditMode.Batch;

    public AuditBatchOptions Batch { get; init; } = AuditBatchOptions.WebhookDefaults;

    /// <summary>First retry delay (kube-apiserver <c>--audit-webhook-initial-backoff</c>, 10 s).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Growth of the delay between attempts (1.5).</summary>
    public double BackoffFactor { get; init; } = 1.5;

    /// <summary>Random extra delay as a fraction of each delay (0.2).</summary>
    public double BackoffJitter { get; init; } = 0.2;

    /// <summary>Attempts in all before a batch is given up (5).</summary>
    public int Attempts { get; init; } = 5;

    /// <summary>Time limit of one POST.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// POSTs <c>EventList</c> batches to a receiver described by a kubeconfig, retrying transport errors, 429 and 5xx with
/// exponential backoff (kube-apiserver retries the same way); other 4xx answers fail the batch at once.
/// </summary>
public sealed class AuditWebhookBackend : AuditBackendBase
{
    public const string PluginName = "webhook";

    private readonly AuditWebhookOptions _options;
    private readonly HttpClient _client;
    private readonly Uri _server;

    public AuditWebhookBackend(AuditWebhookOptions options, AuditMetrics metrics, Action<AuditBackendError>? onError = null,
        TimeProvider? timeProvider = null)
        : this(options, LoadEndpoint((options ?? throw new ArgumentNullException(nameof(options))).KubeconfigPath),
            metrics, onError, timeProvider)
    {
    }

    /// <summary>A backend for a receiver whose kubeconfig has been read already (<see cref="AuditSink.Plan"/>).</summary>
    internal AuditWebhookBackend(AuditWebhookOptions options, KubeconfigEndpoint endpoint, AuditMetrics metrics,
        Action<AuditBackendError>? onError, TimeProvider? timeProvider)
        : base(PluginName, (options ?? throw new ArgumentNullException(nameof(options))).Mode, options.Batch, metrics, onError, timeProvider)
    {
        _options = options;
        _server = endpoint.Server;
        // Trusts only the kubeconfig's CA when it gives one, presents its client certificate, follows no redirect;
        // insecure-skip-tls-verify is honoured when the kubeconfig asks for it, as client-go does.
        _client = new HttpClient(endpoint.CreateHandler(), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        if (endpoint.Token is { } token)
        {
            _client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    /// <summary>The receiver and credentials of the kubeconfig (current context, or its only cluster and user).</summary>
    private static KubeconfigEndpoint LoadEndpoint(string path)
    {
        var errors = new List<ConfigError>();
        return KubeconfigFile.LoadEndpoint(path, errors) ?? throw new ConfigurationException(errors);
    }

    protected override async ValueTask WriteBatchAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken)
    {
        var body = AuditEventSerializer.SerializeEventList(events);
        var delay = _options.InitialBackoff;
        for (var attempt = 1; ; attempt++)
        {
            string failure;
            try
            {
                using var deadline = new CancellationTokenSource(_options.RequestTimeout, Time);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Aborted, deadline.Token);
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var request = new HttpRequestMessage(HttpMethod.Post, _server) { Content = content };
                using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                var code = (int)response.StatusCode;
                if (code is >= 200 and < 300)
                {
                    return;
                }
                failure = $"webhook answered HTTP {code}";
                if (code != 429 && code < 500)
                {
                    throw new HttpRequestException(failure, null, response.StatusCode);
                }
            }
            catch (HttpRequestException ex) when (ex.StatusCode is null)
            {
                failure = $"webhook request failed: {ex.Message}";
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !Aborted.IsCancellationRequested)
            {
                failure = $"webhook request timed out after {_options.RequestTimeout.TotalSeconds:0.###}s";
            }
            if (attempt >= _options.Attempts)
            {
                throw new HttpRequestException($"{failure}; gave up after {attempt} attempt(s)");
            }
            var jitter = _options.BackoffJitter > 0 ? delay * (Random.Shared.NextDouble() * _options.BackoffJitter) : TimeSpan.Zero;
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Aborted))
            {
                await Task.Delay(delay + jitter, Time, linked.Token);
            }
            delay *= _options.BackoffFactor;
        }
    }

    protected override ValueTask CloseAsync()
    {
        _client.Dispose();
        return default;
    }
}
