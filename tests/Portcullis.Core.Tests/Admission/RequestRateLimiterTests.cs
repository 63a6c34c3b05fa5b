using System.Net;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Admission.RateLimiting;

namespace Portcullis.Core.Tests.Admission;

/// <summary><c>admission.rateLimits</c> and <c>admission.longRunning</c>: buckets per key on an injected clock, bounded memory.</summary>
public sealed class RequestRateLimiterTests
{
    [Fact]
    public void Each_type_keys_its_own_buckets_and_refuses_after_burst()
    {
        var time = new FakeTimeProvider();
        var limiter = new RequestRateLimiter(
        [
            new RequestRateLimit("User", 1, 2, 10),
            new RequestRateLimit("SourceIP", 1, 3, 10),
            new RequestRateLimit("Namespace", 1, 4, 10),
        ], time);

        Assert.Empty(limiter.Admit("jane", IPAddress.Parse("10.0.0.1"), "dev"));
        Assert.Empty(limiter.Admit("jane", IPAddress.Parse("10.0.0.1"), "dev"));
        Assert.Equal([new RequestRateLimitFailure("User", "jane", 1)], limiter.Admit("jane", IPAddress.Parse("10.0.0.2"), "dev"));
        // bob from jane's address: the address has had 2 tokens, one left
        Assert.Empty(limiter.Admit("bob", IPAddress.Parse("10.0.0.1"), "dev"));
        Assert.Equal([new RequestRateLimitFailure("SourceIP", "10.0.0.1", 1), new RequestRateLimitFailure("Namespace", "dev", 1)],
            limiter.Admit("bob", IPAddress.Parse("10.0.0.1"), "dev"));
        Assert.Equal("Too many requests: [rate limit reached on type SourceIP for key 10.0.0.1, rate limit reached on type Namespace for key dev]",
            RequestRateLimiter.Message(limiter.Admit("carol", IPAddress.Parse("10.0.0.1"), "dev")));
        // a cluster-scoped request has no namespace: the Namespace limit does not apply; no address: SourceIP does not
        Assert.Empty(limiter.Admit("carol", null, ""));
    }

    [Fact]
    public void The_source_address_is_formatted_only_for_a_SourceIP_limit()
    {
        var time = new FakeTimeProvider();
        var address = new CountingAddress([10, 0, 0, 1]);
        var withoutSourceIp = new RequestRateLimiter([new RequestRateLimit("User", 1, 5, 10), new RequestRateLimit("Server", 1, 5, 0)], time);
        Assert.Empty(withoutSourceIp.Admit("jane", address, "dev"));
        Assert.Equal(0, address.Formatted);

        var withSourceIp = new RequestRateLimiter([new RequestRateLimit("SourceIP", 1, 1, 10), new RequestRateLimit("SourceIP", 1, 5, 10)], time);
        Assert.Empty(withSourceIp.Admit("jane", address, "dev"));
        Assert.Equal(1, address.Formatted); // once, however many SourceIP limits
        Assert.Equal([new RequestRateLimitFailure("SourceIP", "10.0.0.1", 1)], withSourceIp.Admit("jane", address, "dev"));
    }

    private sealed class CountingAddress(byte[] bytes) : IPAddress(bytes)
    {
        public int Formatted { get; private set; }

        public override string ToString()
        {
            Formatted++;
            return base.ToString();
        }
    }

    [Fact]
    public void A_fractional_qps_refills_slowly_and_Retry_After_says_when()
    {
        var time = new FakeTimeProvider();
        var limiter = new RequestRateLimiter([new RequestRateLimit("Server", 0.25, 1, 0)], time);
        Assert.Empty(limiter.Admit("a", null, ""));
        var refused = Assert.Single(limiter.Admit("b", null, ""));
        Assert.Equal(4, refused.RetryAfterSeconds); // a token every 4 s
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(1, Assert.Single(limiter.Admit("c", null, "")).RetryAfterSeconds);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(limiter.Admit("d", null, ""));
    }

    [Fact]
    public void Memory_is_bounded_by_cacheSize_whatever_the_keys()
    {
        var time = new FakeTimeProvider();
        var buckets = new BucketCache(1, 1, 100, time);
        for (var i = 0; i < 10_000; i++)
        {
            Assert.True(buckets.TryTake("10.0." + i, out _));
        }
        Assert.Equal(100, buckets.Count);
    }

    [Fact]
    public void Long_running_requests_are_counted_per_user_and_forgotten_when_closed()
    {
        var open = new LongRunningCounter();
        Assert.True(open.TryEnter("jane", 2));
        Assert.True(open.TryEnter("jane", 2));
        Assert.False(open.TryEnter("jane", 2));
        Assert.True(open.TryEnter("bob", 2));
        open.Exit("jane");
        Assert.True(open.TryEnter("jane", 2));
        open.Exit("jane");
        open.Exit("jane");
        open.Exit("bob");
        Assert.Equal(0, open.Open("jane"));
        Assert.Equal(0, open.Open("bob"));
    }
}
