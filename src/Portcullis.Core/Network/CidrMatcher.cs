using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace Portcullis.Network;

/// <summary>
/// The lookup behind <see cref="CidrSet.Contains"/>: each family's CIDRs become sorted, non-overlapping address ranges
/// (nested and overlapping prefixes merged), and a lookup is one binary search, O(log n) and allocation-free.
/// IPv4 CIDRs match IPv4 and IPv4-mapped IPv6 addresses; IPv6 CIDRs match the other IPv6 addresses — exactly the
/// answers of scanning <see cref="Cidr.Contains"/> over the list.
/// </summary>
internal sealed class CidrMatcher
{
    private readonly RangeTable<uint> _v4;
    private readonly RangeTable<UInt128> _v6;

    public CidrMatcher(IEnumerable<Cidr> cidrs)
    {
        var v4 = new List<(uint, uint)>();
        var v6 = new List<(UInt128, UInt128)>();
        Span<byte> bytes = stackalloc byte[16];
        foreach (var cidr in cidrs)
        {
            cidr.Network.TryWriteBytes(bytes, out _);
            if (cidr.Network.AddressFamily == AddressFamily.InterNetwork)
            {
                v4.Add(RangeTable<uint>.Range(BinaryPrimitives.ReadUInt32BigEndian(bytes), cidr.PrefixLength));
            }
            else
            {
                // The network's own 128 bits, mapped or not: Cidr.Contains compares an IPv6 network only with
                // addresses that stay IPv6 after normalisation, and so does the lookup below.
                v6.Add(RangeTable<UInt128>.Range(BinaryPrimitives.ReadUInt128BigEndian(bytes), cidr.PrefixLength));
            }
        }
        _v4 = new RangeTable<uint>(v4);
        _v6 = new RangeTable<UInt128>(v6);
    }

    /// <summary>Number of merged ranges (IPv4 plus IPv6); at most the number of CIDRs.</summary>
    public int RangeCount => _v4.Count + _v6.Count;

    public bool Contains(IPAddress address) =>
        IPKey.Read(address, out var v4, out var v6) ? _v4.Contains(v4) : _v6.Contains(v6);

    /// <summary>Sorted disjoint closed ranges [start, end] of one family's keys.</summary>
    private readonly struct RangeTable<T> where T : unmanaged, IBinaryInteger<T>, IMinMaxValue<T>
    {
        private readonly T[] _starts;
        private readonly T[] _ends;

        public RangeTable(List<(T Start, T End)> ranges)
        {
            ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
            var starts = new List<T>(ranges.Count);
            var ends = new List<T>(ranges.Count);
            foreach (var (start, end) in ranges)
            {
                // Merge when the range overlaps or touches the previous one (the previous end + 1 cannot overflow
                // here: a previous end of MaxValue covers every later start, which the first test catches).
                if (ends.Count > 0 && (start <= ends[^1] || start == ends[^1] + T.One))
                {
                    if (end > ends[^1])
                    {
                        ends[^1] = end;
                    }
                    continue;
                }
                starts.Add(start);
                ends.Add(end);
            }
            _starts = [.. starts];
            _ends = [.. ends];
        }

        public int Count => _starts.Length;

        public static (T Start, T End) Range(T network, int prefixLength)
        {
            var bits = T.PopCount(T.AllBitsSet);
            var prefix = int.Clamp(prefixLength, 0, int.CreateTruncating(bits));
            var host = prefix == 0 ? T.AllBitsSet : (T.One << (int.CreateTruncating(bits) - prefix)) - T.One;
            var start = network & ~host;
            return (start, start | host);
        }

        public bool Contains(T key)
        {
            var starts = _starts;
            // First index whose start is above the key; the range before it is the only one that can hold the key.
            int lo = 0, hi = starts.Length;
            while (lo < hi)
            {
                var mid = (int)((uint)(lo + hi) >> 1);
                if (starts[mid] <= key)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }
            return lo > 0 && key <= _ends[lo - 1];
        }
    }
}
