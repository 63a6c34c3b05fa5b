using System.Collections.Concurrent;

namespace Portcullis.Authentication.Cache;

/// <summary>
/// The token result cache shared by the JWT, OIDC and webhook authenticators: keyed by the token's SHA-256 (never the
/// token), bounded to <see cref="Capacity"/> entries by two generations (when the young one is half full it becomes the
/// old one and the previous old one is dropped: O(1), no scan, no lock on reads), each entry dropped at its own expiry,
/// which the chain never sets past the token's <c>exp</c>. A brute force of random tokens therefore costs at most
/// <see cref="Capacity"/> entries, however long it lasts.
/// </summary>
public sealed class TokenCache
{
    private readonly TimeProvider _time;
    private readonly int _generationSize;
    private readonly Lock _rotate = new();
    private volatile Generation _young = new();
    private volatile Generation _old = new();

    private sealed class Generation
    {
        public readonly ConcurrentDictionary<TokenDigest, CachedTokenResult> Entries = new();
        public int Count;
    }

    public TokenCache(int capacity = 32_768, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        Capacity = capacity;
        _generationSize = capacity / 2;
        _time = time ?? TimeProvider.System;
    }

    public int Capacity { get; }

    /// <summary>Entries held now (expired ones included until their generation is dropped); never above <see cref="Capacity"/>.</summary>
    public int Count => _young.Entries.Count + _old.Entries.Count;

    public bool TryGet(TokenDigest digest, out CachedTokenResult result)
    {
        var now = _time.GetTimestamp();
        if (_young.Entries.TryGetValue(digest, out result!) || _old.Entries.TryGetValue(digest, out result!))
        {
            if (now < result.ExpiresAt)
            {
                return true;
            }
        }
        result = null!;
        return false;
    }

    /// <summary>Caches <paramref name="result"/> for <paramref name="ttl"/>; a non-positive TTL caches nothing.</summary>
    public void Set(TokenDigest digest, CachedTokenResult result, TimeSpan ttl)
    {
        if (ttl <= TimeSpan.Zero)
        {
            return;
        }
        var entry = result with { ExpiresAt = _time.GetTimestamp() + (long)(ttl.TotalSeconds * _time.TimestampFrequency) };
        var young = _young;
        if (Interlocked.Increment(ref young.Count) > _generationSize)
        {
            lock (_rotate)
            {
                if (_young == young)
                {
                    _old = young;
                    _young = new Generation();
                }
            }
            young = _young;
            Interlocked.Increment(ref young.Count);
        }
        young.Entries[digest] = entry;
    }

    public void Clear()
    {
        lock (_rotate)
        {
            _old = new Generation();
            _young = new Generation();
        }
    }
}

/// <summary>A cached outcome of the token union: a user (with the authenticator that produced it) or a rejection.</summary>
public sealed record CachedTokenResult(
    bool Authenticated,
    UserInfo? User,
    string Authenticator,
    string? Error,
    IReadOnlyDictionary<string, string>? AuditAnnotations)
{
    /// <summary>TimeProvider timestamp after which the entry is ignored.</summary>
    public long ExpiresAt { get; init; }

    /// <summary>The chain's result for this token, built on the first hit and shared by later ones (immutable).</summary>
    internal ChainResult? Result { get; set; }
}
