using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Portcullis.Configuration;
using Portcullis.Kubeconfig;

namespace Portcullis.Authorization.Webhook;

/// <summary>
/// The retry backoff of a webhook call: kube-apiserver's <c>DefaultRetryBackoffWithInitialDelay(500ms)</c>
/// (k8s.io/apiserver/pkg/util/webhook/webhook.go; the authorizer's <c>DefaultRetryBackoff</c> in
/// k8s.io/apiserver/plugin/pkg/authorizer/webhook/webhook.go): at most <see cref="Steps"/> attempts; before attempt n+1
/// it waits <see cref="InitialDelay"/>·<see cref="Factor"/>^(n-1) plus a random 0–<see cref="Jitter"/> of that
/// (k8s.io/apimachinery/pkg/util/wait <c>Backoff.Step</c> and <c>Jitter</c>): 500 ms, 750 ms, 1.125 s, 1.6875 s, each up
/// to 20% longer.
/// </summary>
public sealed record WebhookRetryBackoff
{
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromMilliseconds(500);
    public double Factor { get; init; } = 1.5;
    public double Jitter { get; init; } = 0.2;
    public int Steps { get; init; } = 5;

    public static WebhookRetryBackoff Default { get; } = new();

    /// <summary>The wait before attempt <paramref name="attempt"/>+1 (attempt counts from 1), <paramref name="random01"/> in [0, 1).</summary>
    public TimeSpan DelayAfter(int attempt, double random01)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        var delay = InitialDelay.TotalMilliseconds * Math.Pow(Factor, attempt - 1);
        return TimeSpan.FromMilliseconds(delay + (Jitter > 0 ? random01 * Jitter * delay : 0));
    }
}

/// <summary>Settings of the Webhook mode (authorization.webhook in the configuration).</summary>
public sealed record WebhookAuthorizerOptions
{
    /// <summary>v1 (spec field <c>groups</c>) or v1beta1 (<c>group</c>).</summary>
    public string Version { get; init; } = "v1";
    public TimeSpan AuthorizedTtl { get; init; } = TimeSpan.FromMinutes(5);
    public TimeSpan UnauthorizedTtl { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The whole call's limit: every attempt and every wait between them.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>NoOpinion (default, as kube-apiserver) or Deny: the decision when the webhook cannot be asked.</summary>
    public string FailurePolicy { get; init; } = "NoOpinion";
    /// <summary>Cached decisions kept at most (kube-apiserver's LRU holds 8192), the least recently used pushed out.</summary>
    public int CacheSize { get; init; } = 8192;
    public WebhookRetryBackoff RetryBackoff { get; init; } = WebhookRetryBackoff.Default;
    /// <summary>The jitter's source of randomness (tests pin it).</summary>
    public Random Random { get; init; } = Random.Shared;

    public static WebhookAuthorizerOptions From(AuthorizationWebhookConfiguration c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return new()
        {
            Version = c.Version,
            AuthorizedTtl = c.AuthorizedTTL,
            UnauthorizedTtl = c.UnauthorizedTTL,
            Timeout = c.Timeout,
            FailurePolicy = c.FailurePolicy,
        };
    }
}

/// <summary>
/// The Webhook mode (spec §4.4), as kube-apiserver's webhook authorizer
/// (k8s.io/apiserver/plugin/pkg/authorizer/webhook/webhook.go) behaves: asks a remote service with a
/// SubjectAccessReview (v1 or v1beta1, serialised as the API server serialises it), retries transient failures with
/// kube-apiserver's backoff within <see cref="WebhookAuthorizerOptions.Timeout"/>, caches each answer keyed by the JSON
/// of the whole spec in a bounded LRU whose entries expire one by one (allowed for authorizedTTL, anything else for
/// unauthorizedTTL; failures are not cached, nor requests whose requester-controlled attributes exceed 10,000 bytes),
/// and on failure (timeout, connection, non-2xx, bad JSON) answers the failure policy's decision with the error.
/// </summary>
public sealed class WebhookAuthorizer : IAuthorizer, IDisposable
{
    public const string AuthorizerName = "Webhook";

    /// <summary>kube-apiserver's <c>maxControlledAttrCacheSize</c>: larger requester-controlled attributes are not cached.</summary>
    public const int MaxControlledAttributesCacheSize = 10000;

    private static readonly MediaTypeHeaderValue JsonContentType = new("application/json");

    private readonly HttpClient _client;
    private readonly Uri _server;
    private readonly string? _token;
    private readonly TimeProvider _time;
    private readonly Microsoft.Extensions.Logging.ILogger _logger;
    private readonly Portcullis.Caching.LruExpireCache<string, AuthorizationResult> _cache;

    public WebhookAuthorizer(HttpClient client, Uri server, string? token, WebhookAuthorizerOptions options, TimeProvider? timeProvider = null,
        Microsoft.Extensions.Logging.ILogger<WebhookAuthorizer>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<WebhookAuthorizer>.Instance;
        _client = client;
        _server = server;
        _token = token;
        Options = options;
        _time = timeProvider ?? TimeProvider.System;
        _cache = new(Math.Max(1, options.CacheSize), _time, StringComparer.Ordinal);
    }

    /// <summary>Builds the authorizer from a webhook kubeconfig (current-context).</summary>
    public static WebhookAuthorizer Create(string kubeconfigPath, WebhookAuthorizerOptions options, TimeProvider? timeProvider = null,
        Microsoft.Extensions.Logging.ILogger<WebhookAuthorizer>? logger = null)
    {
        var errors = new List<ConfigError>();
        var endpoint = KubeconfigFile.LoadEndpoint(kubeconfigPath, errors) ?? throw new ConfigurationException(errors);
        var client = new HttpClient(endpoint.CreateHandler(), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        return new WebhookAuthorizer(client, endpoint.Server, endpoint.Token, options, timeProvider, logger);
    }

    public WebhookAuthorizerOptions Options { get; }

    public string Name => AuthorizerName;

    /// <summary>Calls made to the webhook (cache misses), for tests and metrics.</summary>
    public long Calls => Interlocked.Read(ref _calls);
    private long _calls;

    /// <summary>HTTP requests sent to the webhook (a call's retries included).</summary>
    public long Requests => Interlocked.Read(ref _requests);
    private long _requests;

    /// <summary>Decisions held in the cache now (expired ones not yet looked up included).</summary>
    public int CachedDecisions => _cache.Count;

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        var spec = SubjectAccessReview.SpecJson(attributes, Options.Version);
        if (_cache.TryGet(spec, out var cached))
        {
            return new(cached);
        }
        return new(CallAsync(spec, ShouldCache(attributes.Request), cancellationToken));
    }

    /// <summary>
    /// kube-apiserver's <c>shouldCache</c>: a request whose requester-controlled attributes (namespace, verb, group,
    /// version, resource, subresource, name, path) add up to 10,000 bytes or more may be a cache-flooding attempt and is
    /// asked every time.
    /// </summary>
    public static bool ShouldCache(RequestInfo request)
    {
        ArgumentNullException.ThrowIfNull(request);
        long size = 0;
        foreach (var s in (ReadOnlySpan<string>)[request.Namespace, request.Verb, request.ApiGroup, request.ApiVersion, request.Resource, request.Subresource, request.Name, request.Path])
        {
            size += Encoding.UTF8.GetByteCount(s);
        }
        return size < MaxControlledAttributesCacheSize;
    }

    private async Task<AuthorizationResult> CallAsync(string spec, bool cache, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        using var deadline = new CancellationTokenSource(Options.Timeout, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var body = Encoding.UTF8.GetBytes(SubjectAccessReview.RequestJson(spec, Options.Version));
        var backoff = Options.RetryBackoff;
        var steps = Math.Max(1, backoff.Steps);
        SubjectAccessReviewStatus status;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var (ok, parsed, error, retry) = await SendAsync(body, timeout.Token).ConfigureAwait(false);
                if (ok)
                {
                    status = parsed;
                    break;
                }
                if (!retry || attempt >= steps)
                {
                    return Failure(attempt > 1 ? $"{error} (attempt {attempt} of {steps})" : error);
                }
                await Task.Delay(backoff.DelayAfter(attempt, Options.Random.NextDouble()), _time, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Failure($"the webhook did not answer within {Portcullis.Configuration.GoDuration.Format(Options.Timeout)}");
        }
        var result = status.Denied && status.Allowed
            ? new AuthorizationResult(AuthorizationDecision.Deny, status.Reason, "webhook subject access review returned both allow and deny response", AuthorizerName)
            : status.Denied ? AuthorizationResult.Denied(AuthorizerName, status.Reason)
            : status.Allowed ? AuthorizationResult.Allowed(AuthorizerName, status.Reason)
            : AuthorizationResult.NoOpinion(AuthorizerName, status.Reason);
        // kube-apiserver caches every answer the webhook gave (by status.allowed), never a failure.
        var ttl = status.Allowed ? Options.AuthorizedTtl : Options.UnauthorizedTtl;
        if (cache && ttl > TimeSpan.Zero)
        {
            _cache.Add(spec, result, ttl);
        }
        return result;
    }

    /// <summary>
    /// One attempt. Retried as kube-apiserver's <c>DefaultShouldRetry</c> (k8s.io/apiserver/pkg/util/webhook/webhook.go)
    /// retries what client-go makes of the answer: a connection reset; 500 (InternalError), 504 (Timeout), 429
    /// (TooManyRequests); and any other 5xx that carries a <c>Retry-After</c> of a positive number of seconds
    /// (<c>SuggestsClientDelay</c>). Not retried: other 4xx and 5xx, a refused connection, a TLS failure, a body that
    /// is not a SubjectAccessReview.
    /// </summary>
    private async Task<(bool Ok, SubjectAccessReviewStatus Status, string Error, bool Retry)> SendAsync(byte[] body, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        using var request = new HttpRequestMessage(HttpMethod.Post, _server) { Content = new ByteArrayContent(body) };
        // client-go's REST client: exactly "application/json" (no charset) and "application/json, */*".
        request.Content.Headers.ContentType = JsonContentType;
        request.Headers.Accept.ParseAdd("application/json, */*");
        if (_token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        }
        try
        {
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            var code = (int)response.StatusCode;
            if (!response.IsSuccessStatusCode)
            {
                var retryAfter = (code == 429 || code >= 500) && response.Headers.RetryAfter?.Delta is { } delta && delta >= TimeSpan.FromSeconds(1);
                return (false, default, $"the webhook answered {code}", code is 500 or 504 or 429 || retryAfter);
            }
            return SubjectAccessReview.TryParseStatus(text, out var status, out var parseError)
                ? (true, status, "", false)
                : (false, default, parseError, false);
        }
        catch (HttpRequestException ex)
        {
            return (false, default, ex.Message, IsConnectionReset(ex));
        }
    }

    // Go's utilnet.IsConnectionReset: ECONNRESET anywhere in the error chain.
    private static bool IsConnectionReset(Exception ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionReset })
            {
                return true;
            }
        }
        return false;
    }

    private AuthorizationResult Failure(string error)
    {
        var message = "webhook authorizer: " + error;
        Portcullis.Diagnostics.CoreLog.AuthorizationWebhookFailed(_logger, _server.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped),
            Portcullis.Diagnostics.SafeText.Of(error, 300), Options.FailurePolicy == "Deny" ? "Deny" : "NoOpinion");
        return Options.FailurePolicy == "Deny"
            ? new AuthorizationResult(AuthorizationDecision.Deny, "", message, AuthorizerName)
            : new AuthorizationResult(AuthorizationDecision.NoOpinion, "", message, AuthorizerName);
    }

    public void Dispose() => _client.Dispose();
}

/// <summary>The status fields of a SubjectAccessReview response.</summary>
public readonly record struct SubjectAccessReviewStatus(bool Allowed, bool Denied, string Reason, string EvaluationError);

/// <summary>
/// SubjectAccessReview JSON for authorization.k8s.io v1 (<c>groups</c>) and v1beta1 (<c>group</c>), byte for byte as
/// kube-apiserver's webhook authorizer sends it: Go's <c>encoding/json</c> of the typed object through the API
/// machinery's JSON serializer (<c>json.NewEncoder(w).Encode</c>, k8s.io/apimachinery/pkg/runtime/serializer/json):
/// fields in the Go structs' order, empty ones omitted, strings escaped as Go escapes them (<see cref="Http.GoJsonWriter"/>).
/// </summary>
public static class SubjectAccessReview
{
    /// <summary>
    /// The JSON of <c>spec</c> (also the cache key, as kube-apiserver keys on <c>json.Marshal(r.Spec)</c>):
    /// resourceAttributes (namespace, verb, group, version, resource, subresource, name, fieldSelector, labelSelector)
    /// or nonResourceAttributes (path, verb), user, groups|group, extra (keys sorted, as Go writes a map), uid; empty
    /// strings and lists omitted.
    /// </summary>
    public static string SpecJson(AuthorizationAttributes attributes, string version)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        using var w = new JsonText(new Http.GoJsonWriter(256));
        var r = attributes.Request;
        w.Begin();
        if (r.IsResourceRequest)
        {
            w.BeginObject("resourceAttributes");
            w.Opt("namespace", r.Namespace);
            w.Opt("verb", r.Verb);
            w.Opt("group", r.ApiGroup);
            w.Opt("version", r.ApiVersion);
            w.Opt("resource", r.Resource);
            w.Opt("subresource", r.Subresource);
            w.Opt("name", r.Name);
            WriteSelectors(w, r);
            w.End();
        }
        else
        {
            w.BeginObject("nonResourceAttributes");
            w.Opt("path", r.Path);
            w.Opt("verb", r.Verb);
            w.End();
        }
        var u = attributes.User;
        w.Opt("user", u.Name);
        if (u.Groups.Count > 0)
        {
            w.Strings(version == "v1beta1" ? "group" : "groups", u.Groups);
        }
        if (u.Extra.Count > 0)
        {
            w.BeginObject("extra");
            foreach (var (k, values) in u.Extra.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                w.Strings(k, values);
            }
            w.End();
        }
        w.Opt("uid", u.Uid);
        w.End();
        return w.ToString();
    }

    /// <summary>
    /// The whole request body around a spec built by <see cref="SpecJson"/>, as kube-apiserver sends it: <c>kind</c>
    /// before <c>apiVersion</c> (TypeMeta's order), <c>metadata</c> an empty object (ObjectMeta is a struct, which Go's
    /// omitempty never omits; its zero <c>creationTimestamp</c> is omitted since Kubernetes 1.34,
    /// kubernetes/kubernetes#130989 — before, <c>{"creationTimestamp":null}</c>), <c>status</c> with
    /// <c>allowed: false</c> (a non-omitempty bool), and the encoder's trailing newline.
    /// </summary>
    public static string RequestJson(string specJson, string version) =>
        "{\"kind\":\"SubjectAccessReview\",\"apiVersion\":\"authorization.k8s.io/" + (version == "v1beta1" ? "v1beta1" : "v1")
        + "\",\"metadata\":{},\"spec\":" + specJson + ",\"status\":{\"allowed\":false}}\n";

    /// <summary>Reads <c>status</c> of a response; false with an error when the body is not a SubjectAccessReview.</summary>
    public static bool TryParseStatus(string json, out SubjectAccessReviewStatus status, out string error)
    {
        status = default;
        error = "";
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("status", out var s) || s.ValueKind != JsonValueKind.Object)
            {
                error = "the webhook response has no status";
                return false;
            }
            if (root.TryGetProperty("kind", out var kind) && kind.GetString() != "SubjectAccessReview")
            {
                error = $"the webhook answered kind {kind.GetString()}, not SubjectAccessReview";
                return false;
            }
            static bool Bool(JsonElement e, string n) => e.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.True;
            static string Str(JsonElement e, string n) => e.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : "";
            status = new SubjectAccessReviewStatus(Bool(s, "allowed"), Bool(s, "denied"), Str(s, "reason"), Str(s, "evaluationError"));
            return true;
        }
        catch (JsonException ex)
        {
            error = "the webhook response is not JSON: " + ex.Message;
            return false;
        }
    }

    /// <summary>
    /// <c>fieldSelector</c> and <c>labelSelector</c> as kube-apiserver's webhook authorizer writes them (GA in 1.34): only
    /// <c>requirements</c>, never <c>rawSelector</c>; parsed from the request's selectors (RequestInfo keeps them for
    /// list, watch and deletecollection only); a selector that does not parse sends nothing (the request is checked
    /// unnarrowed); field <c>=</c>/<c>==</c> become <c>In</c> and <c>!=</c> <c>NotIn</c>; label <c>=</c>, <c>==</c>,
    /// <c>in</c> become <c>In</c>, <c>!=</c>, <c>notin</c> <c>NotIn</c>, then <c>Exists</c> and <c>DoesNotExist</c>;
    /// <c>gt</c>/<c>lt</c> are left out (requirements are ANDed, so leaving one out only widens what is asked).
    /// </summary>
    private static void WriteSelectors(JsonText w, RequestInfo r)
    {
        if (r.FieldSelector.Length > 0 && Selectors.FieldSelectorParser.Parse(r.FieldSelector, out _) is { Count: > 0 } fields)
        {
            WriteRequirements(w, "fieldSelector", fields, op => op switch { "=" or "==" or "in" => "In", "!=" or "notin" => "NotIn", _ => null });
        }
        if (r.LabelSelector.Length > 0 && Selectors.LabelSelectorParser.Parse(r.LabelSelector, out _) is { Count: > 0 } labels)
        {
            WriteRequirements(w, "labelSelector", labels, op => op switch
            {
                "=" or "==" or "in" => "In",
                "!=" or "notin" => "NotIn",
                "exists" => "Exists",
                "!" => "DoesNotExist",
                _ => null,
            });
        }
    }

    private static void WriteRequirements(JsonText w, string name, IReadOnlyList<Selectors.SelectorRequirement> requirements, Func<string, string?> map)
    {
        if (!requirements.Any(q => map(q.Operator) is not null))
        {
            return; // every requirement dropped: the unrestricted action is asked
        }
        w.BeginObject(name);
        w.BeginArray("requirements");
        foreach (var q in requirements)
        {
            if (map(q.Operator) is not { } op)
            {
                continue;
            }
            w.BeginElement();
            w.Opt("key", q.Key, always: true);
            w.Opt("operator", op, always: true);
            if (q.Values.Count > 0)
            {
                w.Strings("values", q.Values);
            }
            w.End();
        }
        w.EndArray();
        w.End();
    }

    /// <summary>A minimal writer of compact JSON with Go's string escaping; tracks commas per level.</summary>
    private sealed class JsonText(Http.GoJsonWriter b) : IDisposable
    {
        private readonly Stack<bool> _first = new();

        public void Dispose() => b.Dispose();

        public void Begin()
        {
            b.Raw((byte)'{');
            _first.Push(true);
        }

        public void BeginElement()
        {
            Comma();
            Begin();
        }

        public void BeginObject(string name)
        {
            Name(name);
            Begin();
        }

        public void BeginArray(string name)
        {
            Name(name);
            b.Raw((byte)'[');
            _first.Push(true);
        }

        public void End()
        {
            _first.Pop();
            b.Raw((byte)'}');
        }

        public void EndArray()
        {
            _first.Pop();
            b.Raw((byte)']');
        }

        public void Opt(string name, string value, bool always = false)
        {
            if (always || value.Length > 0)
            {
                Name(name);
                b.String(value);
            }
        }

        public void Strings(string name, IEnumerable<string> values)
        {
            Name(name);
            b.Raw((byte)'[');
            var first = true;
            foreach (var v in values)
            {
                if (!first)
                {
                    b.Raw((byte)',');
                }
                first = false;
                b.String(v);
            }
            b.Raw((byte)']');
        }

        private void Name(string name)
        {
            Comma();
            b.String(name);
            b.Raw((byte)':');
        }

        private void Comma()
        {
            if (_first.Pop())
            {
                _first.Push(false);
            }
            else
            {
                b.Raw((byte)',');
                _first.Push(false);
            }
        }

        public override string ToString() => Encoding.UTF8.GetString(b.WrittenSpan);
    }
}
