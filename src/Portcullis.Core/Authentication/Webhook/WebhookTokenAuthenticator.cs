using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Diagnostics;

namespace Portcullis.Authentication.Webhook;

/// <summary>Settings of the TokenReview webhook; defaults follow kube-apiserver where it has one.</summary>
public sealed record WebhookTokenAuthenticatorOptions
{
    /// <summary><c>v1</c> or <c>v1beta1</c> (TokenReview of <c>authentication.k8s.io</c>).</summary>
    public string Version { get; init; } = "v1";
    /// <summary>How long an authenticated review is reused (<c>--authentication-token-webhook-cache-ttl</c>).</summary>
    public TimeSpan CacheTtl { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>How long a rejection is reused, so a replayed bad token is not re-reviewed: short, separate from <see cref="CacheTtl"/>.</summary>
    public TimeSpan NegativeCacheTtl { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Timeout of one HTTP attempt.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Attempts on transport errors, 429 and 5xx (kube-apiserver: 5 steps of 500 ms × 1.5 with 0.2 jitter).</summary>
    public int MaxAttempts { get; init; } = 5;
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(500);
    public double BackoffFactor { get; init; } = 1.5;
    public double Jitter { get; init; } = 0.2;
    /// <summary>Reviews in flight at once; beyond it a token fails closed at once instead of queueing a review flood.</summary>
    public int MaxConcurrentReviews { get; init; } = 64;
    /// <summary>Audiences sent in <c>spec.audiences</c> (the gateway's API audiences); empty = omitted.</summary>
    public IReadOnlyList<string> Audiences { get; init; } = [];
}

/// <summary>
/// Webhook token authentication (spec §2.8): POSTs a TokenReview to the kubeconfig's server. Unreachable after the
/// retries ⇒ an error (401, fail closed) counted in <see cref="TransportErrors"/>. Concurrent reviews of one token share
/// a single call; results are cached by the chain for <see cref="WebhookTokenAuthenticatorOptions.CacheTtl"/> (allowed)
/// or <see cref="WebhookTokenAuthenticatorOptions.NegativeCacheTtl"/> (denied).
/// </summary>
public sealed class WebhookTokenAuthenticator : ITokenAuthenticator, IDisposable
{
    private readonly Uri _server;
    private readonly HttpClient _http;
    private readonly string? _bearer;
    private readonly WebhookTokenAuthenticatorOptions _options;
    private readonly ConcurrentDictionary<TokenDigest, Lazy<Task<TokenResult>>> _inFlight = new();
    private readonly SemaphoreSlim _concurrency;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _calls;
    private long _transportErrors;

    public WebhookTokenAuthenticator(Uri server, HttpMessageHandler handler, WebhookTokenAuthenticatorOptions? options = null, string? bearerToken = null,
        TimeProvider? time = null, ILogger<WebhookTokenAuthenticator>? logger = null)
    {
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<WebhookTokenAuthenticator>.Instance;
        _server = server;
        _http = new HttpClient(handler) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        _bearer = bearerToken;
        _options = options ?? new WebhookTokenAuthenticatorOptions();
        if (_options.Version is not ("v1" or "v1beta1"))
        {
            throw new ArgumentException($"webhook version must be v1 or v1beta1, not \"{_options.Version}\"", nameof(options));
        }
        _concurrency = new SemaphoreSlim(_options.MaxConcurrentReviews);
    }

    /// <summary>Reads a kubeconfig-format webhook configuration (<c>--authentication-token-webhook-config-file</c>).</summary>
    public static WebhookTokenAuthenticator FromKubeconfig(string path, WebhookTokenAuthenticatorOptions? options = null, TimeProvider? time = null,
        ILogger<WebhookTokenAuthenticator>? logger = null)
    {
        var errors = new List<Configuration.ConfigError>();
        var endpoint = Kubeconfig.KubeconfigFile.LoadEndpoint(path, errors) ?? throw new FormatException(string.Join("; ", errors));
        if (endpoint.InsecureSkipTlsVerify)
        {
            throw new FormatException($"{path}: insecure-skip-tls-verify is refused: give the webhook's CA in certificate-authority(-data)");
        }
        // Trusts only the kubeconfig's CA when it gives one (the host name is still checked), follows no redirect.
        var handler = endpoint.CreateHandler();
        return new WebhookTokenAuthenticator(endpoint.Server, handler, options, endpoint.Token, time, logger);
    }

    public string Name => "webhook";
    /// <summary>HTTP requests sent (attempts included).</summary>
    public long Calls => Interlocked.Read(ref _calls);
    /// <summary>Reviews that failed for transport reasons after every retry (the fail-closed errors).</summary>
    public long TransportErrors => Interlocked.Read(ref _transportErrors);

    public ValueTask<TokenResult> AuthenticateTokenAsync(TokenRequest request, CancellationToken cancellationToken)
    {
        // Lazy: GetOrAdd may run its factory twice under contention, but only the stored Lazy ever starts a review.
        var lazy = _inFlight.GetOrAdd(request.Digest, static (_, state) => new Lazy<Task<TokenResult>>(
            () => state.Self.ReviewOnceAsync(state.Request), LazyThreadSafetyMode.ExecutionAndPublication), (Self: this, Request: request));
        return new ValueTask<TokenResult>(lazy.Value.WaitAsync(cancellationToken));
    }

    private async Task<TokenResult> ReviewOnceAsync(TokenRequest request)
    {
        await Task.Yield(); // return the task to every waiter before doing any work
        try
        {
            if (!_concurrency.Wait(0) && !await WaitForSlotAsync().ConfigureAwait(false))
            {
                return Unavailable("too many reviews in flight");
            }
            try
            {
                return await ReviewAsync(request.Token).ConfigureAwait(false);
            }
            finally
            {
                _concurrency.Release();
            }
        }
        finally
        {
            _inFlight.TryRemove(request.Digest, out _); // the result is in the chain's cache from here on
        }
    }

    /// <summary>Waits up to a second (on the injected clock) for a free review slot.</summary>
    private async Task<bool> WaitForSlotAsync()
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(1), _time);
        try
        {
            await _concurrency.WaitAsync(deadline.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task<TokenResult> ReviewAsync(string token)
    {
        var body = BuildRequest(token);
        var delay = _options.InitialBackoff;
        string lastError = "";
        for (var attempt = 1; attempt <= _options.MaxAttempts; attempt++)
        {
            try
            {
                using var timeout = new CancellationTokenSource(_options.Timeout, _time);
                using var message = new HttpRequestMessage(HttpMethod.Post, _server) { Content = new ByteArrayContent(body) };
                message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
                if (_bearer is not null)
                {
                    message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _bearer);
                }
                Interlocked.Increment(ref _calls);
                using var response = await _http.SendAsync(message, timeout.Token).ConfigureAwait(false);
                var bytes = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500)
                {
                    lastError = $"webhook answered {(int)response.StatusCode}";
                }
                else if (!response.IsSuccessStatusCode)
                {
                    return Unavailable($"webhook answered {(int)response.StatusCode}");
                }
                else
                {
                    return ParseResponse(bytes);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
            {
                lastError = ex is OperationCanceledException ? $"no answer within {_options.Timeout.TotalSeconds:0.###}s" : ex.Message;
            }
            if (attempt < _options.MaxAttempts)
            {
                var jitter = 1 + (_options.Jitter * Random.Shared.NextDouble());
                await Task.Delay(delay * jitter, _time).ConfigureAwait(false);
                delay *= _options.BackoffFactor;
            }
        }
        return Unavailable($"webhook unreachable after {_options.MaxAttempts} attempts: {lastError}");
    }

    /// <summary>A review that could not be done: counted, logged (never with the token) and refused.</summary>
    private TokenResult Unavailable(string reason)
    {
        Interlocked.Increment(ref _transportErrors);
        CoreLog.TokenWebhookFailed(_logger, _server.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped), SafeText.Of(reason, 300));
        return TokenResult.Unavailable("webhook token authenticator: " + reason);
    }

    /// <summary>The TokenReview request body for <paramref name="token"/> (the only place the token is written).</summary>
    public byte[] BuildRequest(string token)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteString("apiVersion", "authentication.k8s.io/" + _options.Version);
            writer.WriteString("kind", "TokenReview");
            writer.WriteStartObject("metadata");
            writer.WriteEndObject();
            writer.WriteStartObject("spec");
            writer.WriteString("token", token);
            if (_options.Audiences.Count > 0)
            {
                writer.WriteStartArray("audiences");
                foreach (var a in _options.Audiences)
                {
                    writer.WriteStringValue(a);
                }
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
            writer.WriteStartObject("status");
            writer.WriteStartObject("user");
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return stream.ToArray();
    }

    private TokenResult ParseResponse(byte[] bytes)
    {
        JsonElement status;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("status", out var s) || s.ValueKind != JsonValueKind.Object)
            {
                return Unavailable("response has no status");
            }
            status = s.Clone();
        }
        catch (JsonException)
        {
            return Unavailable("response is not JSON");
        }
        var authenticated = status.TryGetProperty("authenticated", out var a) && a.ValueKind == JsonValueKind.True;
        if (!authenticated)
        {
            var error = status.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
            return string.IsNullOrEmpty(error)
                ? TokenResult.NoResult(_options.NegativeCacheTtl)
                : TokenResult.Fail("webhook token authenticator: " + Clip(error), _options.NegativeCacheTtl);
        }
        if (_options.Audiences.Count > 0 && status.TryGetProperty("audiences", out var auds) && auds.ValueKind == JsonValueKind.Array && auds.GetArrayLength() > 0)
        {
            var returned = auds.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList();
            if (!returned.Any(_options.Audiences.Contains))
            {
                return TokenResult.NoResult(_options.NegativeCacheTtl);
            }
        }
        if (!status.TryGetProperty("user", out var user) || user.ValueKind != JsonValueKind.Object)
        {
            return TokenResult.Fail("webhook token authenticator: authenticated review has no user", TimeSpan.Zero);
        }
        var username = Str(user, "username");
        if (string.IsNullOrEmpty(username))
        {
            return TokenResult.Fail("webhook token authenticator: authenticated review has an empty username", TimeSpan.Zero);
        }
        var groups = user.TryGetProperty("groups", out var g) && g.ValueKind == JsonValueKind.Array
            ? g.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList()
            : [];
        Dictionary<string, IReadOnlyList<string>>? extra = null;
        if (user.TryGetProperty("extra", out var x) && x.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in x.EnumerateObject())
            {
                if (p.Value.ValueKind == JsonValueKind.Array)
                {
                    (extra ??= new(StringComparer.Ordinal))[p.Name] =
                        p.Value.EnumerateArray().Where(v => v.ValueKind == JsonValueKind.String).Select(v => v.GetString()!).ToList();
                }
            }
        }
        return TokenResult.Success(UserInfo.Create(username, groups, Str(user, "uid") ?? "", extra), _options.CacheTtl);
    }

    private static string? Str(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    // The webhook's own error text: clipped, and control or invisible characters escaped.
    private static string Clip(string s) => Portcullis.Diagnostics.SafeText.Of(s, 256);

    public void Dispose()
    {
        _http.Dispose();
        _concurrency.Dispose();
    }
}
