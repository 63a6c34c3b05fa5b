using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Portcullis.Configuration;
using Portcullis.Kubeconfig;

namespace Portcullis.Authorization.Webhook;

/// <summary>Settings of the Webhook mode (authorization.webhook in the configuration).</summary>
public sealed record WebhookAuthorizerOptions
{
    /// <summary>v1 (spec field <c>groups</c>) or v1beta1 (<c>group</c>).</summary>
    public string Version { get; init; } = "v1";
    public TimeSpan AuthorizedTtl { get; init; } = TimeSpan.FromMinutes(5);
    public TimeSpan UnauthorizedTtl { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>NoOpinion (default, as kube-apiserver) or Deny: the decision when the webhook cannot be asked.</summary>
    public string FailurePolicy { get; init; } = "NoOpinion";
    /// <summary>Cached decisions kept at most (kube-apiserver's LRU holds 8192).</summary>
    public int CacheSize { get; init; } = 8192;

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
/// The Webhook mode (spec §4.4): asks a remote service with a SubjectAccessReview (v1 or v1beta1), caches answers keyed
/// by the JSON of the spec (allowed for authorizedTTL, anything else for unauthorizedTTL; errors are not cached), and on
/// failure (timeout, connection, non-2xx, bad JSON) answers the failure policy's decision with the error.
/// </summary>
public sealed class WebhookAuthorizer : IAuthorizer, IDisposable
{
    public const string AuthorizerName = "Webhook";

    private readonly HttpClient _client;
    private readonly Uri _server;
    private readonly string? _token;
    private readonly TimeProvider _time;
    private readonly Microsoft.Extensions.Logging.ILogger _logger;
    private readonly ConcurrentDictionary<string, CacheEntry> _cache = new(StringComparer.Ordinal);

    public WebhookAuthorizer(HttpClient client, Uri server, string? token, WebhookAuthorizerOptions options, TimeProvider? timeProvider = null,
        Microsoft.Extensions.Logging.ILogger<WebhookAuthorizer>? logger = null)
    {
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<WebhookAuthorizer>.Instance;
        _client = client;
        _server = server;
        _token = token;
        Options = options;
        _time = timeProvider ?? TimeProvider.System;
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

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        var spec = SubjectAccessReview.SpecJson(attributes, Options.Version);
        if (_cache.TryGetValue(spec, out var cached) && cached.Expires > _time.GetUtcNow())
        {
            return new(cached.Result);
        }
        return new(CallAsync(spec, cancellationToken));
    }

    private async Task<AuthorizationResult> CallAsync(string spec, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        using var deadline = new CancellationTokenSource(Options.Timeout, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        AuthorizationResult result;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _server)
            {
                Content = new StringContent(SubjectAccessReview.RequestJson(spec, Options.Version), Encoding.UTF8, "application/json"),
            };
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            if (_token is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            }
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return Failure($"the webhook answered {(int)response.StatusCode}");
            }
            if (!SubjectAccessReview.TryParseStatus(body, out var status, out var parseError))
            {
                return Failure(parseError);
            }
            result = status.Denied && status.Allowed
                ? new AuthorizationResult(AuthorizationDecision.Deny, status.Reason, "webhook subject access review returned both allow and deny response", AuthorizerName)
                : status.Denied ? AuthorizationResult.Denied(AuthorizerName, status.Reason)
                : status.Allowed ? AuthorizationResult.Allowed(AuthorizerName, status.Reason)
                : AuthorizationResult.NoOpinion(AuthorizerName, status.Reason);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Failure($"the webhook did not answer within {Portcullis.Configuration.GoDuration.Format(Options.Timeout)}");
        }
        catch (HttpRequestException ex)
        {
            return Failure(ex.Message);
        }
        if (result.Error is null)
        {
            var ttl = result.IsAllowed ? Options.AuthorizedTtl : Options.UnauthorizedTtl;
            if (ttl > TimeSpan.Zero)
            {
                if (_cache.Count >= Options.CacheSize)
                {
                    _cache.Clear(); // crude bound; a burst of misses refills it
                }
                _cache[spec] = new CacheEntry(result, _time.GetUtcNow() + ttl);
            }
        }
        return result;
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

    private sealed record CacheEntry(AuthorizationResult Result, DateTimeOffset Expires);
}

/// <summary>The status fields of a SubjectAccessReview response.</summary>
public readonly record struct SubjectAccessReviewStatus(bool Allowed, bool Denied, string Reason, string EvaluationError);

/// <summary>SubjectAccessReview JSON for authorization.k8s.io v1 (<c>groups</c>) and v1beta1 (<c>group</c>).</summary>
public static class SubjectAccessReview
{
    /// <summary>
    /// The JSON of <c>spec</c> (also the cache key): resourceAttributes (namespace, verb, group, version, resource,
    /// subresource, name, fieldSelector, labelSelector) or nonResourceAttributes (path, verb), user, groups|group, extra,
    /// uid; empty strings omitted.
    /// </summary>
    public static string SpecJson(AuthorizationAttributes attributes, string version)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        using var buffer = new MemoryStream(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            var r = attributes.Request;
            w.WriteStartObject();
            if (r.IsResourceRequest)
            {
                w.WriteStartObject("resourceAttributes");
                Opt(w, "namespace", r.Namespace);
                Opt(w, "verb", r.Verb);
                Opt(w, "group", r.ApiGroup);
                Opt(w, "version", r.ApiVersion);
                Opt(w, "resource", r.Resource);
                Opt(w, "subresource", r.Subresource);
                Opt(w, "name", r.Name);
                WriteSelectors(w, r);
                w.WriteEndObject();
            }
            else
            {
                w.WriteStartObject("nonResourceAttributes");
                Opt(w, "path", r.Path);
                Opt(w, "verb", r.Verb);
                w.WriteEndObject();
            }
            var u = attributes.User;
            Opt(w, "user", u.Name);
            if (u.Groups.Count > 0)
            {
                w.WriteStartArray(version == "v1beta1" ? "group" : "groups");
                foreach (var g in u.Groups)
                {
                    w.WriteStringValue(g);
                }
                w.WriteEndArray();
            }
            if (u.Extra.Count > 0)
            {
                w.WriteStartObject("extra");
                foreach (var (k, values) in u.Extra.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    w.WriteStartArray(k);
                    foreach (var v in values)
                    {
                        w.WriteStringValue(v);
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            Opt(w, "uid", u.Uid);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>The whole request object around a spec built by <see cref="SpecJson"/>.</summary>
    public static string RequestJson(string specJson, string version) =>
        "{\"apiVersion\":\"authorization.k8s.io/" + (version == "v1beta1" ? "v1beta1" : "v1") + "\",\"kind\":\"SubjectAccessReview\",\"spec\":" + specJson + "}";

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
    private static void WriteSelectors(Utf8JsonWriter w, RequestInfo r)
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

    private static void WriteRequirements(Utf8JsonWriter w, string name, IReadOnlyList<Selectors.SelectorRequirement> requirements, Func<string, string?> map)
    {
        if (!requirements.Any(q => map(q.Operator) is not null))
        {
            return; // every requirement dropped: the unrestricted action is asked
        }
        w.WriteStartObject(name);
        w.WriteStartArray("requirements");
        foreach (var q in requirements)
        {
            if (map(q.Operator) is not { } op)
            {
                continue;
            }
            w.WriteStartObject();
            w.WriteString("key", q.Key);
            w.WriteString("operator", op);
            if (q.Values.Count > 0)
            {
                w.WriteStartArray("values");
                foreach (var v in q.Values)
                {
                    w.WriteStringValue(v);
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Opt(Utf8JsonWriter w, string name, string value)
    {
        if (value.Length > 0)
        {
            w.WriteString(name, value);
        }
    }
}
