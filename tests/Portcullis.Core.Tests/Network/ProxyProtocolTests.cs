using System.Buffers;
using System.Net;
using System.Text;
using CsCheck;
using Portcullis.Network;

namespace Portcullis.Core.Tests.Network;

/// <summary>
/// <see cref="ProxyProtocol"/>: the strict PROXY v1/v2 reader. Round trips of random headers, every prefix of a valid
/// header is Incomplete (never Invalid, never Complete), a header split over many segments reads as in one, arbitrary
/// bytes never throw and never yield more bytes than given, and the malformed forms named by the specification are refused.
/// </summary>
public class ProxyProtocolTests
{
    private static readonly Gen<IPAddress> V4 = Gen.UInt.Select(v => new IPAddress(BitConverter.GetBytes(v)));
    private static readonly Gen<IPAddress> V6 = Gen.Byte.Array[16].Select(b => new IPAddress(b)).Where(a => !a.IsIPv4MappedToIPv6);
    private static readonly Gen<int> Port = Gen.Int[0, 65535];

    private static readonly Gen<(IPEndPoint Source, IPEndPoint Destination)> Endpoints = Gen.OneOf(
        Gen.Select(V4, Port, V4, Port, (s, sp, d, dp) => (new IPEndPoint(s, sp), new IPEndPoint(d, dp))),
        Gen.Select(V6, Port, V6, Port, (s, sp, d, dp) => (new IPEndPoint(s, sp), new IPEndPoint(d, dp))));

    // Well-formed TLVs (type, big-endian length, value), as AWS/Azure/GCP balancers append them.
    private static readonly Gen<byte[]> Tlvs = Gen.Select(Gen.Byte, Gen.Byte.Array[0, 40], (t, v) =>
        (byte[])[t, (byte)(v.Length >> 8), (byte)v.Length, .. v]).Array[0, 4].Select(a => a.SelectMany(x => x).ToArray());

    private static readonly byte[] ClientHello = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5];

    [Fact]
    public void V1_and_v2_round_trip_and_leave_the_tls_bytes_after_the_header()
    {
        Gen.Select(Endpoints, Tlvs, Gen.Bool).Sample((e, tlvs, v2) =>
        {
            var header = v2 ? ProxyProtocol.FormatV2(e.Source, e.Destination, tlvs) : ProxyProtocol.FormatV1(e.Source, e.Destination);
            var status = ProxyProtocol.TryParse([.. header, .. ClientHello], out var parsed, out var consumed);
            return status == ProxyHeaderStatus.Complete && consumed == header.Length
                && parsed!.Source!.Equals(e.Source) && parsed.Destination!.Equals(e.Destination) && parsed.Version == (v2 ? 2 : 1);
        });
    }

    [Fact]
    public void Every_proper_prefix_of_a_valid_header_is_incomplete()
    {
        Gen.Select(Endpoints, Tlvs, Gen.Bool).Sample((e, tlvs, v2) =>
        {
            var header = v2 ? ProxyProtocol.FormatV2(e.Source, e.Destination, tlvs) : ProxyProtocol.FormatV1(e.Source, e.Destination);
            for (var n = 0; n < header.Length; n++)
            {
                if (ProxyProtocol.TryParse(header.AsSpan(0, n), out _, out _) != ProxyHeaderStatus.Incomplete)
                {
                    return false;
                }
            }
            return true;
        }, iter: 200);
    }

    [Fact]
    public void A_header_split_over_many_segments_reads_as_in_one()
    {
        Gen.Select(Endpoints, Tlvs, Gen.Bool, Gen.Int[1, 7]).Sample((e, tlvs, v2, chunk) =>
        {
            var bytes = (v2 ? ProxyProtocol.FormatV2(e.Source, e.Destination, tlvs) : ProxyProtocol.FormatV1(e.Source, e.Destination)).Concat(ClientHello).ToArray();
            var status = ProxyProtocol.TryParse(Segmented(bytes, chunk), out var parsed, out var consumed);
            var whole = ProxyProtocol.TryParse(bytes, out var expected, out var expectedConsumed);
            return status == whole && consumed == expectedConsumed && Equals(parsed, expected);
        });
    }

    [Fact]
    public void Arbitrary_bytes_never_throw_and_never_consume_more_than_given()
    {
        // Random bytes, and random bytes behind each signature so that the parsers themselves are exercised.
        var tails = Gen.Byte.Array[0, 300];
        var inputs = Gen.OneOf(tails,
            tails.Select(t => "PROXY "u8.ToArray().Concat(t).ToArray()),
            tails.Select(t => ProxyProtocol.Signature.ToArray().Concat(t).ToArray()),
            Gen.Select(Gen.Byte, Gen.Byte, Gen.UShort, tails, (v, f, l, t) => ProxyProtocol.Signature.ToArray().Concat([v, f, (byte)(l >> 8), (byte)l]).Concat(t).ToArray()),
            Gen.String[Gen.Char["PROXYTCP46UNKOW0123456789.:abcdef \r\n"], 0, 120].Select(s => Encoding.ASCII.GetBytes("PROXY " + s)));
        inputs.Sample(bytes =>
        {
            var status = ProxyProtocol.TryParse(bytes, out var header, out var consumed);
            return status switch
            {
                ProxyHeaderStatus.Complete => header is not null && consumed > 0 && consumed <= bytes.Length,
                _ => header is null && consumed == 0,
            };
        }, iter: 20_000);
    }

    [Theory]
    [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", "192.0.2.1", 56324)]
    [InlineData("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n", "2001:db8::1", 56324)]
    [InlineData("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", "0.0.0.0", 0)]
    public void V1_examples_from_the_specification_parse(string line, string source, int port)
    {
        Assert.Equal(ProxyHeaderStatus.Complete, ProxyProtocol.TryParse(Encoding.ASCII.GetBytes(line), out var header, out var consumed));
        Assert.Equal(line.Length, consumed);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(source), port), header!.Source);
    }

    [Fact]
    public void V1_unknown_and_v2_local_keep_the_connection_addresses()
    {
        Assert.Equal(ProxyHeaderStatus.Complete, ProxyProtocol.TryParse("PROXY UNKNOWN\r\n"u8, out var unknown, out _));
        Assert.Null(unknown!.Source);
        Assert.Equal(ProxyHeaderStatus.Complete, ProxyProtocol.TryParse("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"u8, out var unknown2, out _));
        Assert.Null(unknown2!.Source);
        var local = ProxyProtocol.FormatV2(null, null, [0x04, 0x00, 0x01, 0x00]); // LOCAL with a NOOP TLV
        Assert.Equal(ProxyHeaderStatus.Complete, ProxyProtocol.TryParse(local, out var header, out var consumed));
        Assert.Null(header!.Source);
        Assert.Equal(local.Length, consumed);
    }

    [Theory]
    [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n")] // LF without CR
    [InlineData("PROXY TCP4  192.0.2.1 198.51.100.2 56324 443\r\n")] // two spaces
    [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n")] // a field missing
    [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 x\r\n")] // a field too many
    [InlineData("PROXY TCP5 192.0.2.1 198.51.100.2 56324 443\r\n")] // no such protocol
    [InlineData("PROXY TCP4 2001:db8::1 198.51.100.2 56324 443\r\n")] // IPv6 under TCP4
    [InlineData("PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n")] // IPv4 under TCP6
    [InlineData("PROXY TCP4 192.0.2 198.51.100.2 56324 443\r\n")] // three octets
    [InlineData("PROXY TCP4 127.1 198.51.100.2 56324 443\r\n")] // shorthand IPv4
    [InlineData("PROXY TCP4 192.0.2.001 198.51.100.2 56324 443\r\n")] // leading zero in an octet
    [InlineData("PROXY TCP4 192.0.2.256 198.51.100.2 56324 443\r\n")] // octet over 255
    [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n")] // port over 65535
    [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n")] // leading zero in a port
    [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n")] // signed port
    [InlineData("PROXY TCP6 fe80::1%eth0 2001:db8::2 1 2\r\n")] // zone index
    [InlineData("proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n")] // lower case (not even a signature)
    public void Malformed_v1_lines_are_invalid(string line)
    {
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(Encoding.ASCII.GetBytes(line), out var header, out _));
        Assert.Null(header);
    }

    [Fact]
    public void A_v1_line_without_its_end_within_107_bytes_is_invalid()
    {
        var line = Encoding.ASCII.GetBytes("PROXY TCP4 192.0.2.1 198.51.100.2 1 2" + new string(' ', 100));
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(line, out _, out _));
        Assert.Equal(ProxyHeaderStatus.Incomplete, ProxyProtocol.TryParse(line.AsSpan(0, 106), out _, out _));
    }

    [Fact]
    public void Malformed_v2_headers_are_invalid()
    {
        var good = ProxyProtocol.FormatV2(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 1), new IPEndPoint(IPAddress.Parse("192.0.2.2"), 2));
        byte[] With(int index, byte value)
        {
            var copy = good.ToArray();
            copy[index] = value;
            return copy;
        }
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(With(12, 0x11), out _, out _)); // version 1 in a v2 header
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(With(12, 0x22), out _, out _)); // command 2
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(With(13, 0x12), out _, out _)); // UDP with PROXY
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(With(13, 0x31), out _, out _)); // UNIX with PROXY
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(With(13, 0x41), out _, out _)); // no such family
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(With(15, 11), out _, out _)); // shorter than its addresses
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(With(14, 0x10), out _, out _)); // 4096+ bytes: oversized
        // A TLV whose length runs past the end of the header.
        var tlv = ProxyProtocol.FormatV2(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 1), new IPEndPoint(IPAddress.Parse("192.0.2.2"), 2), [0x01, 0x00, 0x09, 1, 2]);
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(tlv, out _, out _));
    }

    [Fact]
    public void A_tls_client_hello_does_not_start_like_a_header()
    {
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.StartsLikeHeader(new ReadOnlySequence<byte>(ClientHello)));
        Assert.Equal(ProxyHeaderStatus.Incomplete, ProxyProtocol.StartsLikeHeader(new ReadOnlySequence<byte>("PRO"u8.ToArray())));
        Assert.Equal(ProxyHeaderStatus.Complete, ProxyProtocol.StartsLikeHeader(new ReadOnlySequence<byte>(ProxyProtocol.Signature.ToArray())));
    }

    private static ReadOnlySequence<byte> Segmented(byte[] bytes, int chunk)
    {
        Segment? first = null, last = null;
        for (var i = 0; i < bytes.Length; i += chunk)
        {
            var part = bytes.AsMemory(i, Math.Min(chunk, bytes.Length - i));
            last = last is null ? first = new Segment(part, 0) : last.Append(part);
        }
        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long index)
        {
            Memory = memory;
            RunningIndex = index;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
