namespace Portcullis.Admission.RateLimiting;

/// <summary>One of <c>admission.rateLimits</c>: a token bucket per key of its type.</summary>
public sealed record RequestRateLimit(string Type, double Qps, int Burst, int CacheSize);

/// <summary>A rate limit that refused a request: its type, its key, and the seconds until its bucket has a token.</summary>
public readonly record struct RequestRateLimitFailure(string Type, string Key, int RetryAfterSeconds);

/// <summary>
/// <c>admission.rateLimits</c>: token buckets for every authenticated request, one per key of each limit (Server: one
/// bucket; User: the authenticated user's name; SourceIP: the resolved client address; Namespace: the request's
/// namespace, for namespaced requests only), LRU-bounded by <c>cacheSize</c>. Every applicable limit takes a token,
/// even after one has refused (as EventRateLimit), so a refused client cannot save tokens elsewhere by being refused.
/// </summary>
public sealed class RequestRateLimiter
{
    public const string Server = "Server";
    public const string User = "User";
    public const string SourceIP = "SourceIP";
    public const string Namespace = "Namespace";
    public static readonly string[] Types = [User, SourceIP, Namespace, Server];

    private readonly (RequestRateLimit Limit, BucketCache Buckets)[] _limits;

    public RequestRateLimiter(IReadOnlyList<RequestRateLimit> limits, TimeProvider time)
    {
        Limits = limits;
        _limits = [.. limits.Select(l => (l, new BucketCache(l.Qps, l.Burst, l.Type == Server ? 1 : Math.Max(1, l.CacheSize), time)))];
    }

    public IReadOnlyList<RequestRateLimit> Limits { get; }

    /// <summary>
    /// Takes a token from every limit that applies; the limits that had none (empty: admitted, and nothing allocated).
    /// The source address is formatted only when a SourceIP limit is configured, once.
    /// </summary>
    public IReadOnlyList<RequestRateLimitFailure> Admit(string user, System.Net.IPAddress? source, string @namespace)
    {
        List<RequestRateLimitFailure>? failures = null;
        string? sourceIp = null;
        foreach (var (limit, buckets) in _limits)
        {
            var key = limit.Type switch
            {
                User => user,
                SourceIP => sourceIp ??= source?.ToString(),
                Namespace => @namespace.Length > 0 ? @namespace : null,
                _ => "",
            };
            if (key is not null && !buckets.TryTake(key, out var retryAfter))
            {
                (failures ??= []).Add(new RequestRateLimitFailure(limit.Type, key, retryAfter));
            }
        }
        if (failures is null)
        {
            return []; // the empty array: an admitted request allocates nothing here
        }
        return failures;
    }

    /// <summary>The 429's message: <c>Too many requests: rate limit reached on type User for key jane</c> (several: <c>[a, b]</c>).</summary>
    public static string Message(IReadOnlyList<RequestRateLimitFailure> failures)
    {
        var parts = failures.Select(f => $"rate limit reached on type {f.Type} for key {f.Key}").Distinct(StringComparer.Ordinal).ToList();
        return parts.Count == 1 ? $"Too many requests: {parts[0]}" : $"Too many requests: [{string.Join(", ", parts)}]";
    }
}

/// <summary>
/// Open long-running requests (watches, exec, attach, port-forward, proxy, logs) per user, for
/// <c>admission.longRunning.maxPerUser</c>. Only users with an open request are kept, so memory follows the open
/// connections. Shared by every configuration snapshot: a reload does not forget the streams still open.
/// </summary>
public sealed class LongRunningCounter
{
    private readonly Dictionary<string, int> _open = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Counts one more open request of <paramref name="user"/> unless it already has <paramref name="max"/>.</summary>
    public bool TryEnter(string user, int max)
    {
        lock (_lock)
        {
            var open = _open.GetValueOrDefault(user);
            if (open >= max)
            {
                return false;
            }
            _open[user] = open + 1;
            return true;
        }
    }

    /// <summary>One request of <paramref name="user"/> counted by <see cref="TryEnter"/> has ended.</summary>
    public void Exit(string user)
    {
        lock (_lock)
        {
            if (_open.TryGetValue(user, out var open))
            {
                if (open <= 1)
                {
                    _open.Remove(user);
                }
                else
                {
                    _open[user] = open - 1;
                }
            }
        }
    }

    public int Open(string user)
    {
        lock (_lock)
        {
            return _open.GetValueOrDefault(user);
        }
    }
}
