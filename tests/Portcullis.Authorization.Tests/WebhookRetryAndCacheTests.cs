using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Authentication;
using Portcullis.Authorization.Webhook;
using Portcullis.Caching;

namespace Portcullis.Authorization.Tests;

/// <summary>
/// The Webhook mode's client as kube-apiserver's webhook authorizer behaves
/// (k8s.io/apiserver/plugin/pkg/authorizer/webhook/webhook.go, k8s.io/apiserver/pkg/util/webhook/webhook.go,
/// k8s.io/apimachinery/pkg/util/cache/lruexpirecache.go), against a real SubjectAccessReview server on loopback with
/// the host's time faked: retries with its backoff, which answers are retried, the overall timeout, the per-entry
/// LRU cache and the request body byte for byte.
/// </summary>
public sealed class WebhookRetryAndCacheTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private const string Allowed = """{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","status":{"allowed":true}}""";
    private const string Denied = """{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","status":{"allowed":false,"denied":true,"reason":"no"}}""";

    private static AuthorizationAttributes Pod(string name) => new(UserInfo.Create("jane", ["dev"]), RequestInfoParser.Parse("GET", "/api/v1/namespaces/dev/pods/" + name, ""));

    /// <summary>A host clock that stands still until the test moves it, and records the due time of every timer made on it.</summary>
    private sealed class RecordingTime(FakeTimeProvider fake) : TimeProvider
    {
        public FakeTimeProvider Fake => fake;
        public ConcurrentQueue<TimeSpan> Timers { get; } = new();
        public override DateTimeOffset GetUtcNow() => fake.GetUtcNow();
        public override long GetTimestamp() => fake.GetTimestamp();
        public override long TimestampFrequency => fake.TimestampFrequency;
        public override TimeZoneInfo LocalTimeZone => fake.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = fake.CreateTimer(callback, state, dueTime, period);
            Timers.Enqueue(dueTime);
            return timer;
        }

        public static RecordingTime Start() => new(new FakeTimeProvider(DateTimeOffset.UtcNow));
    }

    /// <summary>Jitter pinned at half its range.</summary>
    private sealed class HalfRandom : Random
    {
        public override double NextDouble() => 0.5;
    }

    private static WebhookAuthorizer Create(SarServer server, TimeProvider time, TimeSpan? timeout = null, string failurePolicy = "NoOpinion",
        int cacheSize = 8192, TimeSpan? authorizedTtl = null, TimeSpan? unauthorizedTtl = null) =>
        WebhookAuthorizer.Create(server.KubeconfigPath, new WebhookAuthorizerOptions
        {
            Version = "v1",
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
            FailurePolicy = failurePolicy,
            CacheSize = cacheSize,
            AuthorizedTtl = authorizedTtl ?? TimeSpan.FromMinutes(5),
            UnauthorizedTtl = unauthorizedTtl ?? TimeSpan.FromSeconds(30),
            Random = new HalfRandom(),
        }, time);

    private static Task<AuthorizationResult> Ask(WebhookAuthorizer a, AuthorizationAttributes attributes) =>
        a.AuthorizeAsync(attributes, CancellationToken.None).AsTask().WaitAsync(Timeout);

    // Polls a condition with a deadline (the webhook call runs on its own; the test only moves the clock once it waits).
    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(10);
        }
    }

    private static void AssertDelays(RecordingTime time, TimeSpan timeout, params double[] milliseconds)
    {
        var timers = time.Timers.ToArray();
        Assert.Equal(timeout, timers[0]); // the call's deadline
        Assert.Equal(milliseconds.Length, timers.Length - 1);
        for (var i = 0; i < milliseconds.Length; i++)
        {
            // Task.Delay's timers are in whole milliseconds.
            Assert.InRange(timers[i + 1].TotalMilliseconds, Math.Floor(milliseconds[i]), milliseconds[i]);
        }
    }

    [Fact]
    public void A_timeout_that_is_not_positive_and_a_negative_ttl_are_refused_at_load()
    {
        var errors = new List<Portcullis.Configuration.ConfigError>();
        Portcullis.Configuration.ConfigurationLoader.Parse("""
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            authorization:
              modes: [Webhook]
              webhook:
                configFile: authz.kubeconfig
                timeout: 0s
                authorizedTTL: -1s
                unauthorizedTTL: 0s
            """, "portcullis.yaml", errors);
        var messages = errors.Select(e => e.ToString()).ToList();
        Assert.Contains(messages, m => m.Contains("portcullis.yaml:7", StringComparison.Ordinal) && m.Contains("authorization.webhook.timeout", StringComparison.Ordinal) && m.Contains("must be a positive duration", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("portcullis.yaml:8", StringComparison.Ordinal) && m.Contains("authorization.webhook.authorizedTTL", StringComparison.Ordinal) && m.Contains("must not be negative", StringComparison.Ordinal));
        Assert.DoesNotContain(messages, m => m.Contains("unauthorizedTTL", StringComparison.Ordinal)); // 0: nothing cached, allowed
    }

    [Fact]
    public void The_default_backoff_is_kube_apiservers_500ms_factor_1_5_jitter_0_2_five_steps()
    {
        var b = WebhookRetryBackoff.Default;
        Assert.Equal((TimeSpan.FromMilliseconds(500), 1.5, 0.2, 5), (b.InitialDelay, b.Factor, b.Jitter, b.Steps));
        Assert.Equal([500.0, 750.0, 1125.0, 1687.5], [.. Enumerable.Range(1, 4).Select(n => b.DelayAfter(n, 0).TotalMilliseconds)]);
        Assert.Equal([600.0, 900.0, 1350.0, 2025.0], [.. Enumerable.Range(1, 4).Select(n => Math.Round(b.DelayAfter(n, 0.999999999).TotalMilliseconds, 3))]);
    }

    [Fact]
    public async Task Two_failures_then_an_answer_is_allowed_after_the_backoff()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        server.Answer = () => Task.FromResult(server.Requests.Count <= 2 ? (500, "{}") : (200, Allowed));
        var time = RecordingTime.Start();
        using var webhook = Create(server, time);

        var call = Ask(webhook, Pod("web"));
        await WaitUntil(() => time.Timers.Count == 2, "the first backoff");
        time.Fake.Advance(TimeSpan.FromMilliseconds(551));
        await WaitUntil(() => time.Timers.Count == 3, "the second backoff");
        time.Fake.Advance(TimeSpan.FromMilliseconds(826));
        var r = await call;

        Assert.Equal(AuthorizationDecision.Allow, r.Decision);
        Assert.Null(r.Error);
        Assert.Equal(3, server.Requests.Count);
        Assert.Equal((1, 3), (webhook.Calls, webhook.Requests));
        AssertDelays(time, TimeSpan.FromSeconds(30), 550, 825);
        // The same request body each time.
        Assert.Single(server.Requests.Select(q => q.Body).Distinct());
    }

    [Fact]
    public async Task A_400_is_not_retried()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        server.Answer = () => Task.FromResult((400, "{}"));
        var time = RecordingTime.Start();
        using var webhook = Create(server, time);

        var r = await Ask(webhook, Pod("web"));

        Assert.Equal(AuthorizationDecision.NoOpinion, r.Decision);
        Assert.Equal("webhook authorizer: the webhook answered 400", r.Error);
        Assert.Single(server.Requests);
        AssertDelays(time, TimeSpan.FromSeconds(30));
    }

    public static TheoryData<int, string?, bool> Answers => new()
    {
        // client-go turns these into InternalError, Timeout and TooManyRequests: DefaultShouldRetry retries them.
        { 500, null, true }, { 504, null, true }, { 429, null, true },
        // A Retry-After of a positive number of seconds on a 5xx: SuggestsClientDelay.
        { 503, "3", true }, { 502, "1", true },
        // Not retried.
        { 503, null, false }, { 502, null, false }, { 501, null, false }, { 503, "0", false },
        { 400, null, false }, { 401, null, false }, { 403, null, false }, { 404, null, false }, { 422, null, false },
    };

    [Theory]
    [MemberData(nameof(Answers))]
    public async Task Which_failed_answers_are_retried(int code, string? retryAfter, bool retried)
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        server.RetryAfter = retryAfter;
        server.Answer = () => Task.FromResult(server.Requests.Count <= 1 ? (code, "{}") : (200, Allowed));
        var time = RecordingTime.Start();
        using var webhook = Create(server, time);

        var call = Ask(webhook, Pod("web"));
        if (retried)
        {
            await WaitUntil(() => time.Timers.Count == 2, "the backoff");
            time.Fake.Advance(TimeSpan.FromSeconds(1));
        }
        var r = await call;

        Assert.Equal(retried ? AuthorizationDecision.Allow : AuthorizationDecision.NoOpinion, r.Decision);
        Assert.Equal(retried ? null : $"webhook authorizer: the webhook answered {code}", r.Error);
        Assert.Equal(retried ? 2 : 1, server.Requests.Count);
    }

    [Fact]
    public async Task A_connection_reset_is_retried_and_a_refused_connection_is_not()
    {
        // A plain-HTTP stand-in on a raw socket: the first connection is reset (RST) once the request is in, the second
        // is answered. Kestrel cannot send a reset on purpose, hence the listener.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var connections = 0;
        var answered = "";
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var socket = await listener.AcceptSocketAsync(stop.Token);
                var n = Interlocked.Increment(ref connections);
                var request = await ReadRequestAsync(socket, stop.Token);
                if (n == 1)
                {
                    socket.LingerState = new System.Net.Sockets.LingerOption(true, 0); // close with RST
                    socket.Close();
                    continue;
                }
                Volatile.Write(ref answered, request); // before the answer: the test reads it once answered
                var body = System.Text.Encoding.UTF8.GetBytes(Allowed);
                await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n").Concat(body).ToArray(), stop.Token);
                socket.Shutdown(System.Net.Sockets.SocketShutdown.Both);
            }
        });
        var time = RecordingTime.Start();
        using var webhook = new WebhookAuthorizer(new HttpClient(new SocketsHttpHandler { UseProxy = false }), new Uri($"http://127.0.0.1:{port}/authorize"), null,
            new WebhookAuthorizerOptions { Timeout = TimeSpan.FromSeconds(30), Random = new HalfRandom() }, time);

        var call = Ask(webhook, Pod("web"));
        await WaitUntil(() => time.Timers.Count == 2, "the backoff after the reset");
        time.Fake.Advance(TimeSpan.FromSeconds(1));
        var r = await call;
        Assert.Equal(AuthorizationDecision.Allow, r.Decision);
        Assert.Equal((2, 2L), (Volatile.Read(ref connections), webhook.Requests));
        Assert.Contains("\"kind\":\"SubjectAccessReview\"", Volatile.Read(ref answered), StringComparison.Ordinal);

        // Refused (nobody listens): asked once, as kube-apiserver's DefaultShouldRetry does not retry a refusal.
        listener.Stop();
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => serving.WaitAsync(Timeout));
        var refused = await Ask(webhook, Pod("other"));
        Assert.Equal(AuthorizationDecision.NoOpinion, refused.Decision);
        Assert.NotNull(refused.Error);
        Assert.Equal(3, webhook.Requests);
    }

    // Reads one HTTP/1.1 request (headers and a Content-Length body) from a socket.
    private static async Task<string> ReadRequestAsync(System.Net.Sockets.Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var length = 0;
        while (true)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                break;
            }
            length += read;
            var text = System.Text.Encoding.UTF8.GetString(buffer, 0, length);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
            {
                continue;
            }
            var header = text[..end].Split("\r\n").FirstOrDefault(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
            var contentLength = header is null ? 0 : int.Parse(header["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            if (length >= System.Text.Encoding.UTF8.GetByteCount(text[..end]) + 4 + contentLength)
            {
                return text;
            }
        }
        return System.Text.Encoding.UTF8.GetString(buffer, 0, length);
    }

    [Fact]
    public async Task Five_failed_attempts_take_the_failure_policy()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        server.Answer = () => Task.FromResult((500, "{}"));
        var time = RecordingTime.Start();
        using var webhook = Create(server, time, failurePolicy: "Deny");

        var call = Ask(webhook, Pod("web"));
        for (var wait = 1; wait <= 4; wait++)
        {
            await WaitUntil(() => time.Timers.Count == 1 + wait, $"backoff {wait}");
            time.Fake.Advance(TimeSpan.FromSeconds(3));
        }
        var r = await call;

        Assert.Equal(AuthorizationDecision.Deny, r.Decision);
        Assert.Equal("webhook authorizer: the webhook answered 500 (attempt 5 of 5)", r.Error);
        Assert.Equal(5, server.Requests.Count);
        AssertDelays(time, TimeSpan.FromSeconds(30), 550, 825, 1237.5, 1856.25);
        // A failure is not cached: the next request asks again.
        server.Answer = () => Task.FromResult((200, Allowed));
        Assert.True((await Ask(webhook, Pod("web"))).IsAllowed);
        Assert.Equal(6, server.Requests.Count);
    }

    [Fact]
    public async Task The_timeout_bounds_the_attempts_and_the_waits_together()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        server.Answer = () => Task.FromResult((500, "{}"));
        var time = RecordingTime.Start();
        using var webhook = Create(server, time, timeout: TimeSpan.FromSeconds(1));

        var call = Ask(webhook, Pod("web"));
        await WaitUntil(() => time.Timers.Count == 2, "the first backoff");
        time.Fake.Advance(TimeSpan.FromMilliseconds(551));
        await WaitUntil(() => time.Timers.Count == 3, "the second backoff");
        time.Fake.Advance(TimeSpan.FromMilliseconds(500)); // 1.051 s: past the deadline, inside the 825 ms wait
        var r = await call;

        Assert.Equal(AuthorizationDecision.NoOpinion, r.Decision);
        Assert.Equal("webhook authorizer: the webhook did not answer within 1s", r.Error);
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public async Task Each_decision_expires_at_its_own_ttl()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var webhook = Create(server, time);
        server.Answer = () => Task.FromResult((200, Allowed));
        Assert.True((await Ask(webhook, Pod("allowed"))).IsAllowed);                          // t0, authorizedTTL 5m
        time.Advance(TimeSpan.FromMinutes(4) + TimeSpan.FromSeconds(50));
        server.Answer = () => Task.FromResult((200, Denied));
        Assert.Equal(AuthorizationDecision.Deny, (await Ask(webhook, Pod("denied"))).Decision); // t0+4m50s, unauthorizedTTL 30s
        Assert.Equal(2, webhook.Calls);

        time.Advance(TimeSpan.FromSeconds(10));                                              // t0+5m: the allow's last instant
        Assert.True((await Ask(webhook, Pod("allowed"))).IsAllowed);
        Assert.Equal(2, webhook.Calls);
        time.Advance(TimeSpan.FromTicks(1));                                                 // just past it: asked again
        server.Answer = () => Task.FromResult((200, Allowed));
        Assert.True((await Ask(webhook, Pod("allowed"))).IsAllowed);
        Assert.Equal(3, webhook.Calls);
        Assert.Equal(AuthorizationDecision.Deny, (await Ask(webhook, Pod("denied"))).Decision); // the deny is still cached
        Assert.Equal(3, webhook.Calls);

        time.Advance(TimeSpan.FromSeconds(21));                                              // t0+5m21s: the deny has expired
        server.Answer = () => Task.FromResult((200, Denied));
        Assert.Equal(AuthorizationDecision.Deny, (await Ask(webhook, Pod("denied"))).Decision);
        Assert.Equal(4, webhook.Calls);
        Assert.True((await Ask(webhook, Pod("allowed"))).IsAllowed);                          // the new allow is still cached
        Assert.Equal(4, webhook.Calls);
    }

    [Fact]
    public async Task The_cache_keeps_its_bound_under_many_distinct_requests_pushing_out_the_least_recently_used()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var webhook = Create(server, time, cacheSize: 8);
        Assert.True((await Ask(webhook, Pod("p0"))).IsAllowed);
        for (var i = 1; i < 60; i++)
        {
            Assert.True((await Ask(webhook, Pod("p" + i))).IsAllowed);
            Assert.True(webhook.CachedDecisions <= 8, $"{webhook.CachedDecisions} decisions cached after {i + 1} requests");
            Assert.True((await Ask(webhook, Pod("p0"))).IsAllowed); // p0 stays the most recently used
        }
        Assert.Equal(60, webhook.Calls);                  // p0 was never asked again
        Assert.True((await Ask(webhook, Pod("p59"))).IsAllowed);
        Assert.Equal(60, webhook.Calls);                  // the recent ones are all still there
        Assert.True((await Ask(webhook, Pod("p1"))).IsAllowed);
        Assert.Equal(61, webhook.Calls);                  // an old one was pushed out, one at a time, not the lot
        Assert.Equal(8, webhook.CachedDecisions);
    }

    [Fact]
    public async Task Requester_controlled_attributes_of_10000_bytes_are_not_cached()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        using var webhook = Create(server, new FakeTimeProvider(DateTimeOffset.UtcNow));
        var big = new AuthorizationAttributes(UserInfo.Create("jane", []), RequestInfoParser.Resource("get", "", "pods", ns: "dev", name: new string('a', 10000)));
        var under = new AuthorizationAttributes(UserInfo.Create("jane", []), RequestInfoParser.Resource("get", "", "pods", ns: "dev", name: new string('a', 9000)));
        Assert.False(WebhookAuthorizer.ShouldCache(big.Request));
        Assert.True(WebhookAuthorizer.ShouldCache(under.Request));
        await Ask(webhook, big);
        await Ask(webhook, big);
        await Ask(webhook, under);
        await Ask(webhook, under);
        Assert.Equal(3, server.Requests.Count);
    }

    [Fact]
    public async Task The_request_body_and_headers_are_kube_apiservers_byte_for_byte()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(Timeout);
        using var webhook = Create(server, TimeProvider.System);
        var user = new UserInfo("jane <dev> & \"ops\"\u2028é", "u-1", ["g1", "tab\there\u001b"],
            new Dictionary<string, IReadOnlyList<string>> { ["b"] = ["2"], ["a"] = ["1", "x"] });
        var request = RequestInfoParser.Parse("GET", "/api/v1/namespaces/dev/pods", "labelSelector=app%3Dweb");

        await Ask(webhook, new AuthorizationAttributes(user, request));

        var (body, _) = Assert.Single(server.Requests);
        Assert.Equal(
            "{\"kind\":\"SubjectAccessReview\",\"apiVersion\":\"authorization.k8s.io/v1\",\"metadata\":{},\"spec\":{"
            + "\"resourceAttributes\":{\"namespace\":\"dev\",\"verb\":\"list\",\"version\":\"v1\",\"resource\":\"pods\","
            + "\"labelSelector\":{\"requirements\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"web\"]}]}},"
            + "\"user\":\"jane \\u003cdev\\u003e \\u0026 \\\"ops\\\"\\u2028é\",\"groups\":[\"g1\",\"tab\\there\\u001b\"],"
            + "\"extra\":{\"a\":[\"1\",\"x\"],\"b\":[\"2\"]},\"uid\":\"u-1\"},\"status\":{\"allowed\":false}}\n",
            body);
        var (contentType, accept) = Assert.Single(server.Headers);
        Assert.Equal("application/json", contentType);
        Assert.Equal("application/json, */*", accept);
    }
}

/// <summary><see cref="LruExpireCache{TKey, TValue}"/> on its own: kube-apiserver's LRUExpireCache semantics.</summary>
public sealed class LruExpireCacheTests
{
    [Fact]
    public void An_entry_is_served_through_its_expiry_instant_and_removed_after_it()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var cache = new LruExpireCache<string, int>(4, time);
        cache.Add("a", 1, TimeSpan.FromSeconds(10));
        cache.Add("b", 2, TimeSpan.FromSeconds(20));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(cache.TryGet("a", out var a) && a == 1);
        time.Advance(TimeSpan.FromTicks(1));
        Assert.False(cache.TryGet("a", out _));
        Assert.Equal(1, cache.Count); // removed on lookup
        Assert.True(cache.TryGet("b", out var b) && b == 2);
    }

    [Fact]
    public void Adding_again_replaces_value_and_expiry()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var cache = new LruExpireCache<string, int>(4, time);
        cache.Add("a", 1, TimeSpan.FromSeconds(10));
        time.Advance(TimeSpan.FromSeconds(5));
        cache.Add("a", 2, TimeSpan.FromSeconds(10));
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.True(cache.TryGet("a", out var a) && a == 2);
        Assert.Equal(1, cache.Count);
    }

    [Fact]
    public void When_full_the_least_recently_used_goes_first()
    {
        var cache = new LruExpireCache<string, int>(3, new FakeTimeProvider());
        cache.Add("a", 1, TimeSpan.FromMinutes(1));
        cache.Add("b", 2, TimeSpan.FromMinutes(1));
        cache.Add("c", 3, TimeSpan.FromMinutes(1));
        Assert.True(cache.TryGet("a", out _)); // a is now the most recently used; b the least
        cache.Add("d", 4, TimeSpan.FromMinutes(1));
        Assert.False(cache.TryGet("b", out _));
        Assert.True(cache.TryGet("a", out _));
        Assert.True(cache.TryGet("c", out _));
        Assert.True(cache.TryGet("d", out _));
    }

    [Fact]
    public void The_bound_holds_under_many_keys_from_many_threads()
    {
        var cache = new LruExpireCache<int, int>(100, new FakeTimeProvider());
        Parallel.For(0, 20_000, i =>
        {
            cache.Add(i, i, TimeSpan.FromMinutes(1));
            _ = cache.TryGet(i / 2, out _);
            Assert.True(cache.Count <= 100);
        });
        Assert.Equal(100, cache.Count);
    }
}
