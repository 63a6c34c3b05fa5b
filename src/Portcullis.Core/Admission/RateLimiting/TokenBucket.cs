namespace Portcullis.Admission.RateLimiting;

/// <summary>
/// A token bucket as client-go's <c>flowcontrol.NewTokenBucketRateLimiter</c> (golang.org/x/time/rate): it starts full
/// with <c>burst</c> tokens, refills <c>qps</c> tokens a second up to <c>burst</c>, and a request takes one token or is
/// refused. It reads the time it is given (an injected <see cref="TimeProvider"/>'s timestamps), never the wall clock.
/// Not thread-safe: its owner (<see cref="BucketCache"/>) takes the lock.
/// System.Threading.RateLimiting's TokenBucketRateLimiter is not used: it refills on a timer in whole periods and takes
/// no TimeProvider, so neither kube-apiserver's continuous refill nor a test's fake clock could drive it.
/// </summary>
public sealed class TokenBucket(double qps, int burst, long now)
{
    private double _tokens = burst;
    private long _last = now;

    /// <summary>Takes a token at <paramref name="now"/> (a <see cref="TimeProvider.GetTimestamp"/> value).</summary>
    public bool TryTake(long now, long frequency)
    {
        Advance(now, frequency);
        if (_tokens >= 1)
        {
            _tokens -= 1;
            return true;
        }
        return false;
    }

    /// <summary>Whole seconds until a token is there (at least 1): the <c>Retry-After</c> of a refusal.</summary>
    public int SecondsUntilToken() => Math.Max(1, (int)Math.Ceiling((1 - _tokens) / qps));

    private void Advance(long now, long frequency)
    {
        if (now > _last)
        {
            _tokens = Math.Min(burst, _tokens + ((now - _last) / (double)frequency * qps));
            _last = now;
        }
    }
}

/// <summary>
/// The buckets of one limit, by key, in an LRU of <c>capacity</c> keys (as kube-apiserver's EventRateLimit keeps them in
/// hashicorp/golang-lru): the least recently used key is dropped when a new one comes, and a dropped key that comes back
/// starts with a full bucket. Memory is bounded by the capacity whatever the keys are.
/// </summary>
public sealed class BucketCache(double qps, int burst, int capacity, TimeProvider time)
{
    private readonly Dictionary<string, LinkedListNode<(string Key, TokenBucket Bucket)>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, TokenBucket Bucket)> _order = new();
    private readonly Lock _lock = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _map.Count;
            }
        }
    }

    /// <summary>Takes a token from <paramref name="key"/>'s bucket; when refused, <paramref name="retryAfter"/> is the wait in seconds.</summary>
    public bool TryTake(string key, out int retryAfter)
    {
        var now = time.GetTimestamp();
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
            }
            else
            {
                if (_map.Count >= capacity && _order.Last is { } oldest)
                {
                    _order.RemoveLast();
                    _map.Remove(oldest.Value.Key);
                }
                node = _order.AddFirst((key, new TokenBucket(qps, burst, now)));
                _map[key] = node;
            }
            var bucket = node.Value.Bucket;
            if (bucket.TryTake(now, time.TimestampFrequency))
            {
                retryAfter = 0;
                return true;
            }
            retryAfter = bucket.SecondsUntilToken();
            return false;
        }
    }
}
