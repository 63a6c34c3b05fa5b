using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Portcullis.Network;

/// <summary>The outcome of reading a PROXY protocol header from the bytes received so far.</summary>
public enum ProxyHeaderStatus
{
    /// <summary>A complete, valid header: <see cref="ProxyHeader"/> and the bytes it used are known.</summary>
    Complete,
    /// <summary>Every byte so far fits a header, but it is not complete: read more.</summary>
    Incomplete,
    /// <summary>Not a valid header (wrong signature, malformed, unsupported or over <see cref="ProxyProtocol.MaxHeaderBytes"/>).</summary>
    Invalid,
}

/// <summary>
/// A parsed PROXY protocol header. <see cref="Source"/> is the real client (null for the v2 LOCAL command and v1
/// <c>UNKNOWN</c>, where the receiver keeps the connection's own addresses, as the specification says).
/// </summary>
public sealed record ProxyHeader(int Version, IPEndPoint? Source, IPEndPoint? Destination);

/// <summary>
/// A strict reader of the PROXY protocol (HAProxy's specification, versions 1 and 2) as a load balancer writes it at the
/// start of a TCP connection. v1: <c>PROXY TCP4|TCP6 src dst sport dport\r\n</c> or <c>PROXY UNKNOWN…\r\n</c>, at most
/// 107 bytes, single spaces, addresses in the named family (IPv4 as four decimal octets), ports 0–65535 without leading
/// zeros. v2: the 12-byte signature, version 2, command LOCAL or PROXY, family TCP over IPv4 or IPv6 (anything else only
/// with LOCAL), the address block, then TLVs that must be well formed and are skipped; at most
/// <see cref="MaxHeaderBytes"/> bytes. Anything else is <see cref="ProxyHeaderStatus.Invalid"/>: nothing is guessed.
/// </summary>
public static class ProxyProtocol
{
    /// <summary>The longest header accepted (v2 with its TLVs); longer ones are refused.</summary>
    public const int MaxHeaderBytes = 4096;

    /// <summary>The longest v1 line, CRLF included (the specification's limit).</summary>
    public const int MaxV1Bytes = 107;

    private static readonly byte[] V1Prefix = "PROXY "u8.ToArray();
    private static readonly byte[] V2Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>The v2 signature (12 bytes).</summary>
    public static ReadOnlySpan<byte> Signature => V2Signature;

    /// <summary>
    /// Whether the bytes so far start like a PROXY header (v1 or v2): <see cref="ProxyHeaderStatus.Complete"/> when a full
    /// signature is there, <see cref="ProxyHeaderStatus.Incomplete"/> when the bytes so far are a prefix of one (or none
    /// came yet), <see cref="ProxyHeaderStatus.Invalid"/> when they cannot be (a TLS ClientHello starts with 0x16).
    /// </summary>
    public static ProxyHeaderStatus StartsLikeHeader(ReadOnlySequence<byte> buffer)
    {
        Span<byte> head = stackalloc byte[V2Signature.Length];
        var n = (int)Math.Min(buffer.Length, head.Length);
        buffer.Slice(0, n).CopyTo(head);
        head = head[..n];
        var v1 = Prefix(head, V1Prefix);
        var v2 = Prefix(head, V2Signature);
        if ((v1 && n >= V1Prefix.Length) || (v2 && n >= V2Signature.Length))
        {
            return ProxyHeaderStatus.Complete;
        }
        return v1 || v2 ? ProxyHeaderStatus.Incomplete : ProxyHeaderStatus.Invalid;
    }

    private static bool Prefix(ReadOnlySpan<byte> head, ReadOnlySpan<byte> signature)
    {
        var n = Math.Min(head.Length, signature.Length);
        return head[..n].SequenceEqual(signature[..n]);
    }

    /// <summary>Reads a header from the start of <paramref name="buffer"/>; <paramref name="consumed"/> is its length when complete.</summary>
    public static ProxyHeaderStatus TryParse(ReadOnlySequence<byte> buffer, out ProxyHeader? header, out int consumed)
    {
        header = null;
        consumed = 0;
        var start = StartsLikeHeader(buffer);
        if (start != ProxyHeaderStatus.Complete)
        {
            return start;
        }
        Span<byte> first = stackalloc byte[1];
        buffer.Slice(0, 1).CopyTo(first);
        return first[0] == (byte)'P' ? ParseV1(buffer, out header, out consumed) : ParseV2(buffer, out header, out consumed);
    }

    /// <summary>Reads a header from a contiguous span (tests, fuzzing).</summary>
    public static ProxyHeaderStatus TryParse(ReadOnlySpan<byte> bytes, out ProxyHeader? header, out int consumed) =>
        TryParse(new ReadOnlySequence<byte>(bytes.ToArray()), out header, out consumed);

    private static ProxyHeaderStatus ParseV1(ReadOnlySequence<byte> buffer, out ProxyHeader? header, out int consumed)
    {
        header = null;
        consumed = 0;
        Span<byte> line = stackalloc byte[MaxV1Bytes];
        var n = (int)Math.Min(buffer.Length, MaxV1Bytes);
        buffer.Slice(0, n).CopyTo(line);
        line = line[..n];
        var lf = line.IndexOf((byte)'\n');
        if (lf < 0)
        {
            // No end of line within the limit: malformed once the limit is reached, otherwise wait for more.
            return n >= MaxV1Bytes ? ProxyHeaderStatus.Invalid : ProxyHeaderStatus.Incomplete;
        }
        if (lf == 0 || line[lf - 1] != (byte)'\r')
        {
            return ProxyHeaderStatus.Invalid;
        }
        var body = line[..(lf - 1)];
        foreach (var b in body)
        {
            if (b is < 0x20 or > 0x7E)
            {
                return ProxyHeaderStatus.Invalid;
            }
        }
        var text = Encoding.ASCII.GetString(body);
        var parts = text.Split(' ');
        if (parts.Length >= 2 && parts[0] == "PROXY" && parts[1] == "UNKNOWN")
        {
            // The sender does not know the addresses: the receiver keeps the connection's own; the rest of the line is ignored.
            header = new ProxyHeader(1, null, null);
            consumed = lf + 1;
            return ProxyHeaderStatus.Complete;
        }
        if (parts.Length != 6 || parts[0] != "PROXY")
        {
            return ProxyHeaderStatus.Invalid;
        }
        var family = parts[1] switch
        {
            "TCP4" => AddressFamily.InterNetwork,
            "TCP6" => AddressFamily.InterNetworkV6,
            _ => AddressFamily.Unknown,
        };
        if (family == AddressFamily.Unknown
            || !TryAddress(parts[2], family, out var source) || !TryAddress(parts[3], family, out var destination)
            || !TryPort(parts[4], out var sourcePort) || !TryPort(parts[5], out var destinationPort))
        {
            return ProxyHeaderStatus.Invalid;
        }
        header = new ProxyHeader(1, new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destinationPort));
        consumed = lf + 1;
        return ProxyHeaderStatus.Complete;
    }

    private static bool TryAddress(string text, AddressFamily family, out IPAddress address)
    {
        address = IPAddress.None;
        if (family == AddressFamily.InterNetwork)
        {
            // Four decimal octets exactly: IPAddress.TryParse would also take "1", "0x7f.1" or "127.1".
            var octets = text.Split('.');
            if (octets.Length != 4)
            {
                return false;
            }
            var bytes = new byte[4];
            for (var i = 0; i < 4; i++)
            {
                if (!TryDecimal(octets[i], 255, out var value))
                {
                    return false;
                }
                bytes[i] = (byte)value;
            }
            address = new IPAddress(bytes);
            return true;
        }
        // IPv6: hex digits, colons and (for an embedded IPv4 tail) dots only — no zone, no brackets.
        if (text.Length == 0 || !text.Contains(':', StringComparison.Ordinal)
            || !text.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.')
            || !IPAddress.TryParse(text, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }
        address = parsed;
        return true;
    }

    private static bool TryPort(string text, out int port) => TryDecimal(text, 65535, out port);

    // A decimal number without sign or leading zeros (except "0" itself), at most max.
    private static bool TryDecimal(string text, int max, out int value)
    {
        value = 0;
        if (text.Length is 0 or > 5 || !text.All(char.IsAsciiDigit) || (text.Length > 1 && text[0] == '0'))
        {
            return false;
        }
        value = int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        return value <= max;
    }

    private static ProxyHeaderStatus ParseV2(ReadOnlySequence<byte> buffer, out ProxyHeader? header, out int consumed)
    {
        header = null;
        consumed = 0;
        const int fixedLength = 16;
        if (buffer.Length < fixedLength)
        {
            return ProxyHeaderStatus.Incomplete;
        }
        Span<byte> fixedPart = stackalloc byte[fixedLength];
        buffer.Slice(0, fixedLength).CopyTo(fixedPart);
        var version = fixedPart[12] >> 4;
        var command = fixedPart[12] & 0x0F;
        var familyProtocol = fixedPart[13];
        var length = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[14..]);
        if (version != 2 || command > 1 || fixedLength + length > MaxHeaderBytes)
        {
            return ProxyHeaderStatus.Invalid;
        }
        var addressLength = familyProtocol switch
        {
            0x11 => 12, // TCP over IPv4
            0x21 => 36, // TCP over IPv6
            0x00 => 0,  // UNSPEC
            0x12 => 12, // UDP over IPv4 (LOCAL only)
            0x22 => 36, // UDP over IPv6 (LOCAL only)
            0x31 or 0x32 => 216, // UNIX stream/datagram (LOCAL only)
            _ => -1,
        };
        var isLocal = command == 0;
        if (addressLength < 0 || (!isLocal && familyProtocol is not (0x11 or 0x21)) || length < addressLength)
        {
            return ProxyHeaderStatus.Invalid;
        }
        if (buffer.Length < fixedLength + length)
        {
            return ProxyHeaderStatus.Incomplete;
        }
        var payload = buffer.Slice(fixedLength, length).ToArray();
        if (!TlvsWellFormed(payload.AsSpan(addressLength)))
        {
            return ProxyHeaderStatus.Invalid;
        }
        consumed = fixedLength + length;
        if (isLocal)
        {
            header = new ProxyHeader(2, null, null);
            return ProxyHeaderStatus.Complete;
        }
        var a = payload.AsSpan();
        var size = familyProtocol == 0x11 ? 4 : 16;
        var source = new IPAddress(a[..size]);
        var destination = new IPAddress(a.Slice(size, size));
        var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(a.Slice(2 * size, 2));
        var destinationPort = BinaryPrimitives.ReadUInt16BigEndian(a.Slice((2 * size) + 2, 2));
        header = new ProxyHeader(2, new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destinationPort));
        return ProxyHeaderStatus.Complete;
    }

    // type (1 byte), length (2 bytes, big-endian), value; the list must end exactly at the end of the header.
    private static bool TlvsWellFormed(ReadOnlySpan<byte> tlvs)
    {
        while (tlvs.Length > 0)
        {
            if (tlvs.Length < 3)
            {
                return false;
            }
            var length = BinaryPrimitives.ReadUInt16BigEndian(tlvs[1..]);
            if (tlvs.Length < 3 + length)
            {
                return false;
            }
            tlvs = tlvs[(3 + length)..];
        }
        return true;
    }

    /// <summary>A v1 header line for <paramref name="source"/> → <paramref name="destination"/> (same family).</summary>
    public static byte[] FormatV1(IPEndPoint source, IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var family = source.AddressFamily == AddressFamily.InterNetwork ? "TCP4" : "TCP6";
        return Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"PROXY {family} {source.Address} {destination.Address} {source.Port} {destination.Port}\r\n"));
    }

    /// <summary>
    /// A v2 header: PROXY (or LOCAL when <paramref name="source"/> is null) over TCP, followed by <paramref name="tlvs"/>
    /// as given (already encoded).
    /// </summary>
    public static byte[] FormatV2(IPEndPoint? source, IPEndPoint? destination, ReadOnlySpan<byte> tlvs = default)
    {
        var local = source is null || destination is null;
        var size = local ? 0 : source!.AddressFamily == AddressFamily.InterNetwork ? 4 : 16;
        var addressLength = local ? 0 : (2 * size) + 4;
        var header = new byte[16 + addressLength + tlvs.Length];
        V2Signature.CopyTo(header, 0);
        header[12] = (byte)(0x20 | (local ? 0 : 1));
        header[13] = local ? (byte)0x00 : size == 4 ? (byte)0x11 : (byte)0x21;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), (ushort)(addressLength + tlvs.Length));
        if (!local)
        {
            source!.Address.TryWriteBytes(header.AsSpan(16, size), out _);
            destination!.Address.TryWriteBytes(header.AsSpan(16 + size, size), out _);
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(16 + (2 * size)), (ushort)source.Port);
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(18 + (2 * size)), (ushort)destination.Port);
        }
        tlvs.CopyTo(header.AsSpan(16 + addressLength));
        return header;
    }
}
