using System.Collections.Concurrent;

namespace Portcullis.Authentication;

/// <summary>
/// Plain counters the gateway exports as Prometheus <c>authentication_attempts{result}</c>,
/// <c>authentication_duration_seconds{result}</c> and a per-authenticator counter. Lock-free (Interlocked).
/// </summary>
public sealed class AuthenticationCounters
{
    /// <summary>Upper bounds (seconds) of the duration buckets: kube-apiserver's authentication_duration_seconds buckets.</summary>
    public static readonly IReadOnlyList<double> DurationBuckets =
        [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];

    private readonly ConcurrentDictionary<string, AuthenticatorCounters> _authenticators = new(StringComparer.Ordinal);

    public AttemptCounters Success { get; } = new();
    /// <summary>Not authenticated without an authenticator error (no or unrecognised credentials).</summary>
    public AttemptCounters Failure { get; } = new();
    /// <summary>Not authenticated because an authenticator errored (invalid token, webhook down, ...).</summary>
    public AttemptCounters Error { get; } = new();

    /// <summary>Per authenticator name (x509, token-file, service-account, jwt:ISSUER, webhook, anonymous).</summary>
    public IReadOnlyDictionary<string, AuthenticatorCounters> Authenticators => _authenticators;

    public AuthenticatorCounters For(string authenticator) => _authenticators.GetOrAdd(authenticator, static _ => new AuthenticatorCounters());

    internal void RecordAttempt(ChainResult result, TimeSpan elapsed)
    {
        var counters = result.Authenticated ? Success : result.IsError ? Error : Failure;
        counters.Record(elapsed);
    }

    /// <summary>Count and duration histogram of one attempt result.</summary>
    public sealed class AttemptCounters
    {
        private long _count;
        private long _totalTicks;
        private readonly long[] _buckets = new long[DurationBuckets.Count];

        public long Count => Interlocked.Read(ref _count);
        public double TotalSeconds => TimeSpan.FromTicks(Interlocked.Read(ref _totalTicks)).TotalSeconds;

        /// <summary>Cumulative-free bucket counts aligned with <see cref="DurationBuckets"/> (an observation goes in its first bucket;
        /// observations above the last bound are only in <see cref="Count"/>).</summary>
        public long[] BucketCounts()
        {
            var copy = new long[_buckets.Length];
            for (var i = 0; i < copy.Length; i++)
            {
                copy[i] = Interlocked.Read(ref _buckets[i]);
            }
            return copy;
        }

        internal void Record(TimeSpan elapsed)
        {
            Interlocked.Increment(ref _count);
            Interlocked.Add(ref _totalTicks, elapsed.Ticks);
            var seconds = elapsed.TotalSeconds;
            for (var i = 0; i < DurationBuckets.Count; i++)
            {
                if (seconds <= DurationBuckets[i])
                {
                    Interlocked.Increment(ref _buckets[i]);
                    break;
                }
            }
        }
    }
}

/// <summary>Outcomes of one authenticator: successes, rejections (errors), unrecognised credentials, and time spent.</summary>
public sealed class AuthenticatorCounters
{
    private long _success;
    private long _failure;
    private long _noResult;
    private long _errors;
    private long _cacheHits;
    private long _totalTicks;

    public long Success => Interlocked.Read(ref _success);
    /// <summary>Credentials this authenticator rejected.</summary>
    public long Failure => Interlocked.Read(ref _failure);
    public long NoResult => Interlocked.Read(ref _noResult);
    /// <summary>Infrastructure errors (webhook unreachable, issuer not initialised): the "counted error" of a fail-closed path.</summary>
    public long Errors => Interlocked.Read(ref _errors);
    public long CacheHits => Interlocked.Read(ref _cacheHits);
    public double TotalSeconds => TimeSpan.FromTicks(Interlocked.Read(ref _totalTicks)).TotalSeconds;

    internal void Record(AuthenticationOutcome outcome, TimeSpan elapsed)
    {
        switch (outcome)
        {
            case AuthenticationOutcome.Success: Interlocked.Increment(ref _success); break;
            case AuthenticationOutcome.Failure: Interlocked.Increment(ref _failure); break;
            default: Interlocked.Increment(ref _noResult); break;
        }
        Interlocked.Add(ref _totalTicks, elapsed.Ticks);
    }

    internal void RecordError() => Interlocked.Increment(ref _errors);
    internal void RecordCacheHit() => Interlocked.Increment(ref _cacheHits);
}
