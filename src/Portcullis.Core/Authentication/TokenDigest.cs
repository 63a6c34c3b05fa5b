using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Portcullis.Authentication;

/// <summary>
/// The SHA-256 of a bearer token as four 64-bit words: the only form in which a token is kept (cache keys,
/// token-file table) or shown (<see cref="ShortHex"/> in errors and logs).
/// </summary>
public readonly record struct TokenDigest(ulong A, ulong B, ulong C, ulong D)
{
    /// <summary>Tokens longer than this are hashed through a pooled buffer instead of the stack.</summary>
    private const int StackLimit = 4096;

    public static TokenDigest Of(string token) => Of(token.AsSpan());

    public static TokenDigest Of(ReadOnlySpan<char> token)
    {
        var max = Encoding.UTF8.GetMaxByteCount(token.Length);
        byte[]? rented = null;
        var buffer = max <= StackLimit ? stackalloc byte[max] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            var n = Encoding.UTF8.GetBytes(token, buffer);
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(buffer[..n], hash);
            return FromHash(hash);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented, clearArray: true);
            }
        }
    }

    public static TokenDigest FromHash(ReadOnlySpan<byte> hash) => new(
        BinaryPrimitives.ReadUInt64BigEndian(hash),
        BinaryPrimitives.ReadUInt64BigEndian(hash[8..]),
        BinaryPrimitives.ReadUInt64BigEndian(hash[16..]),
        BinaryPrimitives.ReadUInt64BigEndian(hash[24..]));

    /// <summary>Lower-case hex of the whole digest (deny lists match <c>tokenSHA256:</c> against this).</summary>
    public string ToHex()
    {
        Span<byte> bytes = stackalloc byte[32];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, A);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], B);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[16..], C);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[24..], D);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>The first 12 hex digits: enough to correlate log lines, useless to an attacker.</summary>
    public string ShortHex() => ToHex()[..12];

    public override string ToString() => "sha256:" + ShortHex();
}
