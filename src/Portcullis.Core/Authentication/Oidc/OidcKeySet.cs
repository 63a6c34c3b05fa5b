using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Diagnostics;
using Portcullis.Authentication.Tokens;

namespace Portcullis.Authentication.Oidc;

/// <summary>Timing of <see cref="OidcKeySet"/>; injectable so tests need no long waits.</summary>
public sealed record OidcKeySetOptions
{
    /// <summary>At most one JWKS fetch per this interval for tokens with an unknown <c>kid</c> (a flood of fake kids is one fetch).</summary>
    public TimeSpan MinRefreshInterval { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan InitialRetryDelay { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromMinutes(1);
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Only for tests against a provider on loopback: allow an <c>http://127.0.0.1</c> issuer. kube-apiserver requires https.</summary>
    public bool AllowHttpLoopbackIssuer { get; init; }
}

/// <summary>
/// The signing keys of one issuer: discovery (<c>/.well-known/openid-configuration</c>, or <c>discoveryURL</c> verbatim)
/// then <c>jwks_uri</c>, fetched in the background with exponential backoff until it works, then refreshed when a token
/// names an unknown <c>kid</c> (rate-limited, one fetch in flight). Until the first fetch succeeds the authenticator
/// answers "not initialized" and the rest of the chain keeps serving.
/// </summary>
public sealed class OidcKeySet : IDisposable
{
    private readonly Uri _discoveryUrl;
    private readonly string _issuer;
    private readonly HttpClient _http;
    private readonly OidcKeySetOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _refreshLock = new();
    private volatile Snapshot? _snapshot;
    private Task? _refresh;
    private long _lastAttemptTicks = long.MinValue;
    private long _fetches;
    private Uri? _jwksUri;

    private sealed record Snapshot(IReadOnlyList<JwtKey> Keys);

    private readonly bool _ownsHttp;

    public OidcKeySet(Uri discoveryUrl, string issuer, HttpClient http, OidcKeySetOptions? options = null, TimeProvider? time = null, bool ownsHttpClient = false,
        ILogger<OidcKeySet>? logger = null)
    {
        _logger = logger ?? NullLogger<OidcKeySet>.Instance;
        _ownsHttp = ownsHttpClient;
        _discoveryUrl = discoveryUrl;
        _issuer = issuer;
        _http = http;
        _options = options ?? new OidcKeySetOptions();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Completes when the first discovery + JWKS fetch succeeded.</summary>
    public Task Ready => _ready.Task;
    /// <summary>Why the last fetch failed (also logged when it happens); null after a success.</summary>
    public string? LastError { get; private set; }
    /// <summary>JWKS fetches done so far (tests assert the unknown-kid rate limit with it).</summary>
    public long Fetches => Interlocked.Read(ref _fetches);
    public bool IsInitialized => _snapshot is not null;

    /// <summary>Builds an HttpClient that trusts only <paramref name="caBundlePem"/> when given (<c>--oidc-ca-file</c> / <c>certificateAuthority</c>).</summary>
    public static HttpClient CreateHttpClient(string? caBundlePem)
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), AllowAutoRedirect = false };
        if (!string.IsNullOrWhiteSpace(caBundlePem))
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPem(caBundlePem);
            if (roots.Count == 0)
            {
                throw new FormatException("the certificate authority bundle holds no PEM certificate");
            }
            handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
            {
                if (cert is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
                {
                    return false;
                }
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(cert as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(cert.GetRawCertData()));
            };
        }
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Starts the background initialisation (idempotent).</summary>
    public void Start() => _ = Task.Run(InitializeLoopAsync);

    /// <summary>The current keys, refreshed first when <paramref name="kid"/> is unknown and the rate limit allows; null before initialisation.</summary>
    public async ValueTask<IReadOnlyList<JwtKey>?> GetKeysAsync(string? kid, CancellationToken cancellationToken)
    {
        var snapshot = _snapshot;
        if (snapshot is null)
        {
            return null;
        }
        if (kid is null || snapshot.Keys.Any(k => k.KeyId == kid))
        {
            return snapshot.Keys;
        }
        Task? refresh;
        lock (_refreshLock)
        {
            var now = _time.GetTimestamp();
            if (_refresh is { IsCompleted: false })
            {
                refresh = _refresh;
            }
            else if (_lastAttemptTicks == long.MinValue || _time.GetElapsedTime(_lastAttemptTicks, now) >= _options.MinRefreshInterval)
            {
                _lastAttemptTicks = now;
                refresh = _refresh = RefreshKeysAsync();
            }
            else
            {
                refresh = null;
            }
        }
        if (refresh is not null)
        {
            try
            {
                await refresh.WaitAsync(_options.RequestTimeout * 2, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // answer with the keys we have; the refresh goes on in the background
            }
        }
        return _snapshot?.Keys ?? snapshot.Keys;
    }

    private async Task InitializeLoopAsync()
    {
        var delay = _options.InitialRetryDelay;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                _lastAttemptTicks = _time.GetTimestamp();
                await FetchDiscoveryAsync(_stop.Token).ConfigureAwait(false);
                await FetchJwksAsync(_stop.Token).ConfigureAwait(false);
                CoreLog.OidcKeysLoaded(_logger, _issuer, _snapshot?.Keys.Count ?? 0);
                _ready.TrySetResult();
                return;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LastError = ex.Message;
                CoreLog.OidcKeysInitFailed(_logger, _issuer, SafeText.Of(ex.Message, 300), delay.TotalSeconds);
            }
            try
            {
                await Task.Delay(delay, _time, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxRetryDelay.Ticks));
        }
    }

    private async Task RefreshKeysAsync()
    {
        try
        {
            await FetchJwksAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LastError = ex.Message; // keep serving with the keys we have
            CoreLog.OidcKeyRefreshFailed(_logger, _issuer, SafeText.Of(ex.Message, 300));
        }
    }

    private async Task FetchDiscoveryAsync(CancellationToken cancellationToken)
    {
        using var doc = await GetJsonAsync(_discoveryUrl, cancellationToken).ConfigureAwait(false);
        var issuer = doc.RootElement.TryGetProperty("issuer", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : null;
        if (issuer != _issuer)
        {
            throw new InvalidOperationException($"oidc: issuer did not match the issuer returned by provider, expected \"{_issuer}\" got \"{issuer}\"");
        }
        var jwks = doc.RootElement.TryGetProperty("jwks_uri", out var j) && j.ValueKind == JsonValueKind.String ? j.GetString() : null;
        if (!Uri.TryCreate(jwks, UriKind.Absolute, out var jwksUri) || !IsAllowedScheme(jwksUri))
        {
            throw new InvalidOperationException($"oidc: discovery document of \"{_issuer}\" has no usable jwks_uri");
        }
        _jwksUri = jwksUri;
    }

    private async Task FetchJwksAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _fetches);
        var uri = _jwksUri ?? throw new InvalidOperationException("oidc: discovery has not completed");
        using var response = await SendAsync(uri, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var keys = JwtKey.ParseJwks(body);
        if (keys.Count == 0)
        {
            throw new InvalidOperationException($"oidc: JWKS of \"{_issuer}\" holds no RSA or EC signing key");
        }
        _snapshot = new Snapshot(keys);
        LastError = null;
    }

    private async Task<JsonDocument> GetJsonAsync(Uri uri, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(uri, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return JsonDocument.Parse(body);
    }

    private async Task<HttpResponseMessage> SendAsync(Uri uri, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(_options.RequestTimeout, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var response = await _http.GetAsync(uri, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            response.Dispose();
            throw new HttpRequestException($"GET {uri} answered {(int)response.StatusCode}");
        }
        return response;
    }

    private bool IsAllowedScheme(Uri uri) =>
        uri.Scheme == Uri.UriSchemeHttps || (_options.AllowHttpLoopbackIssuer && uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback);

    public void Dispose()
    {
        _stop.Cancel(); // not disposed: the background loop may still read its token once more
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }
}
