using System.Buffers.Binary;
using System.Net;

namespace Portcullis.Network;

/// <summary>
/// Numeric keys for addresses, read without allocating. IPv4 and IPv4-mapped IPv6 addresses give an IPv4 key (as
/// <see cref="Cidr.Normalize"/> does); every other IPv6 address gives its 128-bit value (the scope id is ignored, as
/// <see cref="Cidr.Contains"/> ignores it).
/// </summary>
internal static class IPKey
{
    /// <summary>Returns true and <paramref name="v4"/> for IPv4 (or IPv4-mapped); false and <paramref name="v6"/> otherwise.</summary>
    public static bool Read(IPAddress address, out uint v4, out UInt128 v6)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var length))
        {
            throw new ArgumentException("address could not be read", nameof(address));
        }
        if (length == 4)
        {
            v4 = BinaryPrimitives.ReadUInt32BigEndian(bytes);
            v6 = default;
            return true;
        }
        if (BinaryPrimitives.ReadUInt64LittleEndian(bytes) == 0 && BinaryPrimitives.ReadUInt32BigEndian(bytes[8..]) == 0x0000FFFF)
        {
            v4 = BinaryPrimitives.ReadUInt32BigEndian(bytes[12..]);
            v6 = default;
            return true;
        }
        v4 = 0;
        v6 = BinaryPrimitives.ReadUInt128BigEndian(bytes);
        return false;
    }

    /// <summary>One key space for exact addresses: IPv4 (and IPv4-mapped) as ::ffff:a.b.c.d, IPv6 as itself.</summary>
    public static UInt128 Unified(IPAddress address) =>
        Read(address, out var v4, out var v6) ? new UInt128(0, 0xFFFF_0000_0000UL | v4) : v6;

    /// <summary>The address of a <see cref="Unified"/> key (IPv4 when it is ::ffff:a.b.c.d).</summary>
    public static IPAddress ToAddress(UInt128 key)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, key);
        return key >> 32 == 0xFFFF ? new IPAddress(bytes[12..]) : new IPAddress(bytes);
    }
}
