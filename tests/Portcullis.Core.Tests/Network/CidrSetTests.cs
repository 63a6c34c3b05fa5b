using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using CsCheck;
using Portcullis.Network;

namespace Portcullis.Core.Tests.Network;

/// <summary>
/// <see cref="CidrSet.Contains"/> (merged ranges, bucket index) answers exactly as the scan of <see cref="Cidr.Contains"/>
/// that it replaced, for random sets with nested, overlapping, /0, /32 and /128 prefixes, and IPv4-mapped addresses;
/// <see cref="NetworkAccess"/> answers as the gateway's deny-then-allow check over two such sets.
/// </summary>
public class CidrSetTests
{
    private static bool Naive(IEnumerable<Cidr> cidrs, IPAddress address) => cidrs.Any(c => c.Contains(address));

    private static IPAddress V4(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }

    private static IPAddress V6(UInt128 value)
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
        return new IPAddress(bytes);
    }

    // Few distinct bases, so that random prefixes of them nest and overlap.
    private static readonly Gen<uint> V4Value = Gen.OneOf(
        Gen.Const(0u), Gen.Const(uint.MaxValue), Gen.UInt,
        Gen.Int[0, 1023].Select(i => 0x0A00_0000u + ((uint)i * 61)),
        Gen.Int[0, 255].Select(i => 0xC0A8_0000u | (uint)i));

    private static readonly Gen<UInt128> V6Value = Gen.OneOf(
        Gen.Const(UInt128.Zero), Gen.Const(UInt128.MaxValue), Gen.Const(UInt128.One),
        Gen.Select(Gen.ULong, Gen.ULong, (h, l) => new UInt128(h, l)),
        Gen.Select(Gen.Int[0, 3], Gen.ULong, (i, l) => new UInt128(0x2001_0DB8_0000_0000UL + (ulong)i, l)),
        // ::ffff:0:0/96 and its neighbours: mapped IPv4 space seen as IPv6.
        Gen.UInt.Select(v => new UInt128(0, 0xFFFF_0000_0000UL | v)),
        Gen.UInt.Select(v => new UInt128(0, 0xFFFE_0000_0000UL | v)));

    private static readonly Gen<Cidr> V4Cidr = Gen.Select(V4Value, Gen.OneOf(Gen.Const(0), Gen.Const(32), Gen.Int[0, 32], Gen.Int[20, 32]),
        (v, p) => Parse($"{V4(v)}/{p}"));

    private static readonly Gen<Cidr> V6Cidr = Gen.Select(V6Value, Gen.OneOf(Gen.Const(0), Gen.Const(128), Gen.Int[0, 128], Gen.Int[90, 128]),
        (v, p) => V6(v).IsIPv4MappedToIPv6
            // Cidr.TryParse turns a mapped network into IPv4 (and refuses a prefix over 32 for it); the constructor
            // keeps it IPv6, which the naive scan then never matches with a (normalised, IPv4) mapped address.
            ? new Cidr(V6(v), p)
            : Parse($"{V6(v)}/{p}"));

    // The constructor does not mask the network; Cidr.Contains compares masked bits only, and so must the ranges.
    private static readonly Gen<Cidr> UnmaskedV4 = Gen.Select(V4Value, Gen.Int[0, 32], (v, p) => new Cidr(V4(v), p));

    private static readonly Gen<Cidr> AnyCidr = Gen.Frequency((4, V4Cidr), (4, V6Cidr), (1, UnmaskedV4));

    private static readonly Gen<IPAddress> AnyAddress = Gen.OneOf(
        V4Value.Select(V4),
        V4Value.Select(v => V4(v).MapToIPv6()),
        V6Value.Select(V6));

    private static Cidr Parse(string text) => Cidr.TryParse(text, out var cidr) ? cidr : throw new InvalidOperationException(text);

    /// <summary>Addresses at and around each CIDR's edges, and their IPv4-mapped forms.</summary>
    private static IEnumerable<IPAddress> EdgeProbes(Cidr cidr)
    {
        var bytes = new byte[16];
        cidr.Network.TryWriteBytes(bytes, out var length);
        if (length == 4)
        {
            var network = BinaryPrimitives.ReadUInt32BigEndian(bytes);
            var host = cidr.PrefixLength >= 32 ? 0u : uint.MaxValue >> cidr.PrefixLength;
            var start = network & ~host;
            var end = start | host;
            foreach (var v in new[] { start, end, start - 1, end + 1, start + (host / 2) })
            {
                yield return V4(v);
                yield return V4(v).MapToIPv6();
            }
        }
        else
        {
            var network = BinaryPrimitives.ReadUInt128BigEndian(bytes);
            var host = cidr.PrefixLength >= 128 ? UInt128.Zero : UInt128.MaxValue >> cidr.PrefixLength;
            var start = network & ~host;
            var end = start | host;
            foreach (var v in new[] { start, end, start - 1, end + 1, start + (host / 2) })
            {
                yield return V6(v);
            }
        }
    }

    [Fact]
    public void Contains_equals_the_linear_scan_for_random_sets_and_addresses() =>
        Gen.Select(AnyCidr.Array[0, 40], AnyAddress.Array[0, 20]).Sample((cidrs, extra) =>
        {
            var set = new CidrSet(cidrs);
            foreach (var probe in cidrs.SelectMany(EdgeProbes).Concat(extra))
            {
                Assert.True(Naive(cidrs, probe) == set.Contains(probe), $"{probe} in [{string.Join(", ", cidrs)}]");
            }
        }, iter: 5_000);

    [Fact]
    public void NetworkAccess_equals_deny_then_allow_for_random_lists() =>
        Gen.Select(AnyCidr.Array[0, 12], AnyCidr.Array[0, 12], AnyAddress.Array[0, 10]).Sample((allow, deny, extra) =>
        {
            var access = new NetworkAccess(new CidrSet(allow), new CidrSet(deny));
            foreach (var probe in allow.Concat(deny).SelectMany(EdgeProbes).Concat(extra))
            {
                var expected = !Naive(deny, probe) && (allow.Length == 0 || Naive(allow, probe));
                Assert.True(expected == access.IsAllowed(probe), $"{probe} allow [{string.Join(", ", allow)}] deny [{string.Join(", ", deny)}]");
            }
        }, iter: 5_000);

    [Theory]
    [InlineData("", "", "203.0.113.9", true)]
    [InlineData("", "", "2001:db8::1", true)]
    [InlineData("", "10.0.0.0/8", "10.1.1.1", false)]
    [InlineData("", "10.0.0.0/8", "::ffff:10.1.1.1", false)]
    [InlineData("", "10.0.0.0/8", "11.0.0.0", true)]
    [InlineData("", "10.0.0.0/8", "::1", true)]
    [InlineData("", "0.0.0.0/0", "::ffff:1.2.3.4", false)]
    [InlineData("", "::/0", "1.2.3.4", true)]
    [InlineData("", "::/0", "::1", false)]
    [InlineData("10.0.0.0/8", "10.1.0.0/16", "10.0.255.255", true)]
    [InlineData("10.0.0.0/8", "10.1.0.0/16", "10.1.0.0", false)]
    [InlineData("10.0.0.0/8", "10.1.0.0/16", "10.2.0.0", true)]
    [InlineData("10.0.0.0/8", "", "2001:db8::1", false)]
    [InlineData("10.0.0.0/8,2001:db8::/32", "2001:db8::/33", "2001:db8:8000::", true)]
    [InlineData("10.0.0.0/8", "0.0.0.0/0", "10.0.0.1", false)]
    [InlineData("255.255.255.0/24", "255.255.255.255", "255.255.255.254", true)]
    [InlineData("255.255.255.0/24", "255.255.255.255", "255.255.255.255", false)]
    public void NetworkAccess_lets_deny_win_and_an_empty_allow_list_allow_everything(string allow, string deny, string address, bool expected)
    {
        static CidrSet Set(string list) => CidrSet.Parse(list.Split(',', StringSplitOptions.RemoveEmptyEntries));
        var access = new NetworkAccess(Set(allow), Set(deny));
        Assert.Equal(expected, access.IsAllowed(IPAddress.Parse(address)));
    }

    [Fact]
    public void Contains_equals_the_linear_scan_with_100000_entries()
    {
        var rng = new Random(20261205);
        var cidrs = new List<Cidr>();
        for (var i = 0; i < 100_000; i++)
        {
            cidrs.Add(i % 2 == 0
                ? Parse($"{V4((uint)rng.NextInt64(0, 1L << 32))}/{rng.Next(8, 33)}")
                : Parse($"{V6(new UInt128((ulong)rng.NextInt64(), (ulong)rng.NextInt64()))}/{rng.Next(16, 129)}"));
        }
        var set = new CidrSet(cidrs);
        var probes = cidrs.Take(200).SelectMany(EdgeProbes)
            .Concat(Enumerable.Range(0, 300).Select(_ => V4((uint)rng.NextInt64(0, 1L << 32))))
            .Concat(Enumerable.Range(0, 300).Select(_ => V6(new UInt128((ulong)rng.NextInt64(), (ulong)rng.NextInt64()))))
            .ToList();
        var hits = 0;
        foreach (var probe in probes)
        {
            var expected = Naive(cidrs, probe);
            Assert.True(expected == set.Contains(probe), probe.ToString());
            hits += expected ? 1 : 0;
        }
        Assert.InRange(hits, 400, probes.Count - 300); // both answers were exercised
    }

    [Theory]
    [InlineData("0.0.0.0/0", "203.0.113.9", true)]
    [InlineData("0.0.0.0/0", "::ffff:203.0.113.9", true)]
    [InlineData("0.0.0.0/0", "2001:db8::1", false)]
    [InlineData("::/0", "2001:db8::1", true)]
    [InlineData("::/0", "203.0.113.9", false)]
    [InlineData("::/0", "::ffff:203.0.113.9", false)]
    [InlineData("203.0.113.9/32", "::ffff:203.0.113.9", true)]
    [InlineData("203.0.113.9/32", "203.0.113.10", false)]
    [InlineData("2001:db8::1/128", "2001:db8::1", true)]
    [InlineData("2001:db8::1/128", "2001:db8::2", false)]
    [InlineData("::ffff:10.1.2.3", "10.1.2.3", true)]
    [InlineData("255.255.255.255/32", "255.255.255.255", true)]
    [InlineData("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true)]
    public void Contains_follows_the_family_and_mapping_rules(string cidr, string address, bool expected)
    {
        var set = CidrSet.Parse([cidr]);
        var ip = IPAddress.Parse(address);
        Assert.Equal(expected, set.Contains(ip));
        Assert.Equal(expected, Naive(set.Items, ip));
    }

    [Fact]
    public void Nested_and_overlapping_prefixes_merge_without_changing_answers()
    {
        var set = CidrSet.Parse(["10.0.0.0/8", "10.1.0.0/16", "10.255.255.255", "11.0.0.0/8", "192.168.1.0/24", "192.168.0.0/23", "2001:db8::/32", "2001:db8:1::/48"]);
        Assert.True(set.Contains(IPAddress.Parse("10.1.2.3")));
        Assert.True(set.Contains(IPAddress.Parse("11.255.255.255")));
        Assert.True(set.Contains(IPAddress.Parse("192.168.1.255")));
        Assert.False(set.Contains(IPAddress.Parse("192.168.2.0")));
        Assert.False(set.Contains(IPAddress.Parse("12.0.0.0")));
        Assert.False(set.Contains(IPAddress.Parse("9.255.255.255")));
        Assert.True(set.Contains(IPAddress.Parse("2001:db8:ffff::1")));
        Assert.False(set.Contains(IPAddress.Parse("2001:db9::")));
        Assert.Equal(8, set.Items.Count); // the public list is the configuration as written
    }

    [Fact]
    public void Empty_set_contains_nothing()
    {
        Assert.False(CidrSet.Empty.Contains(IPAddress.Parse("127.0.0.1")));
        Assert.False(CidrSet.Empty.Contains(IPAddress.IPv6Loopback));
        Assert.True(CidrSet.Empty.IsEmpty);
    }

    [Fact]
    public void Contains_does_not_allocate()
    {
        var set = CidrSet.Parse(["10.0.0.0/8", "2001:db8::/32"]);
        var v4 = IPAddress.Parse("10.9.8.7");
        var mapped = IPAddress.Parse("::ffff:10.9.8.7");
        var v6 = IPAddress.Parse("2001:db8::7");
        Assert.True(set.Contains(v4) && set.Contains(mapped) && set.Contains(v6)); // warm up
        var before = GC.GetAllocatedBytesForCurrentThread();
        var all = true;
        for (var i = 0; i < 1000; i++)
        {
            all &= set.Contains(v4) & set.Contains(mapped) & set.Contains(v6);
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(all);
        Assert.Equal(0, allocated);
    }
}
