using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Portcullis.Authentication.Cache;

/// <summary>
/// Spares the SHA-256 of a token already seen: a fixed table of <see cref="Slots"/> entries indexed by a keyed 64-bit
/// XxHash3 of the token (seed random per process), each entry holding a token that authenticated, its XxHash3 and its
/// SHA-256. A lookup answers the stored SHA-256 only when the hash matches <b>and</b> the whole token is equal (compared in
/// constant time for its length), so a hash collision can never give one token another's digest: it costs the normal
/// SHA-256 path. The cache itself stays keyed by SHA-256; this only finds that key faster.
/// Only tokens that authenticated are entered (a brute force never writes here), only up to
/// <see cref="MaxTokenChars"/> characters, one per slot (a newer one replaces an older one): memory is bounded by
/// <see cref="Slots"/> × <see cref="MaxTokenChars"/> characters, whatever the traffic.
/// </summary>
public sealed class TokenDigestMemo
{
    public const int Slots = 1024;
    public const int MaxTokenChars = 4096;

    private readonly long _seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));
    private readonly Entry?[] _table = new Entry?[Slots];
    private readonly TokenHash? _hash;

    /// <summary>A hash function other than the seeded XxHash3 (tests force collisions with it).</summary>
    internal delegate ulong TokenHash(ReadOnlySpan<char> token);

    public TokenDigestMemo()
    {
    }

    internal TokenDigestMemo(TokenHash hash) => _hash = hash;

    private sealed class Entry(ulong hash, string token, TokenDigest digest)
    {
        public readonly ulong Hash = hash;
        public readonly string Token = token;
        public readonly TokenDigest Digest = digest;
    }

    /// <summary>The token's SHA-256: from the table when this exact token is in it, computed otherwise.</summary>
    public TokenDigest Of(ReadOnlySpan<char> token)
    {
        if (token.Length <= MaxTokenChars)
        {
            var hash = Hash(token);
            var entry = Volatile.Read(ref _table[(int)(hash & (Slots - 1))]);
            if (entry is not null && entry.Hash == hash && FixedTimeEquals(entry.Token, token))
            {
                return entry.Digest;
            }
        }
        return TokenDigest.Of(token);
    }

    /// <summary>Enters a token that authenticated, with its SHA-256 (computed by the caller from this very token).</summary>
    public void Remember(string token, TokenDigest digest)
    {
        if (token.Length > MaxTokenChars)
        {
            return;
        }
        var hash = Hash(token);
        Volatile.Write(ref _table[(int)(hash & (Slots - 1))], new Entry(hash, token, digest));
    }

    /// <summary>Forgets every token (e.g. with the result cache).</summary>
    public void Clear()
    {
        for (var i = 0; i < _table.Length; i++)
        {
            Volatile.Write(ref _table[i], null);
        }
    }

    private ulong Hash(ReadOnlySpan<char> token) => _hash is null ? XxHash3.HashToUInt64(MemoryMarshal.AsBytes(token), _seed) : _hash(token);

    /// <summary>Equal lengths and contents, in a time that depends only on the length (no early exit on a mismatch).</summary>
    internal static bool FixedTimeEquals(ReadOnlySpan<char> stored, ReadOnlySpan<char> presented)
    {
        if (stored.Length != presented.Length)
        {
            return false;
        }
        var a = MemoryMarshal.AsBytes(stored);
        var b = MemoryMarshal.AsBytes(presented);
        var wa = MemoryMarshal.Cast<byte, ulong>(a);
        var wb = MemoryMarshal.Cast<byte, ulong>(b);
        ulong difference = 0;
        for (var i = 0; i < wa.Length; i++)
        {
            difference |= wa[i] ^ wb[i];
        }
        for (var i = wa.Length * sizeof(ulong); i < a.Length; i++)
        {
            difference |= (uint)(a[i] ^ b[i]);
        }
        return difference == 0;
    }
}
