using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace Portcullis.Network;

/// <summary>
/// The lookup behind <see cref="CidrSet.Contains"/>: each family's CIDRs become sorted, non-overlapping address ranges
/// (nested and overlapping prefixes merged) with a bucket index over them; a lookup reads one index slot and searches
/// that bucket, allocation-free.
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

    private CidrMatcher(RangeTable<uint> v4, RangeTable<UInt128> v6)
    {
        _v4 = v4;
        _v6 = v6;
    }

    /// <summary>The addresses in <paramref name="allow"/> (every address when null) and not in <paramref name="deny"/>.</summary>
    public static CidrMatcher Difference(CidrMatcher? allow, CidrMatcher deny) =>
        new(RangeTable<uint>.Difference(allow?._v4, deny._v4), RangeTable<UInt128>.Difference(allow?._v6, deny._v6));

    /// <summary>Number of merged ranges (IPv4 plus IPv6); at most the number of CIDRs.</summary>
    public int RangeCount => _v4.Count + _v6.Count;

    public bool Contains(IPAddress address) =>
        IPKey.Read(address, out var v4, out var v6) ? _v4.Contains(v4) : _v6.Contains(v6);

    /// <summary>
    /// Sorted disjoint closed ranges [start, end] of one family's keys, with a bucket index: the span from the lowest to
    /// the highest start is cut into about as many equal buckets as there are ranges (at most 2^20), and each bucket
    /// records where its ranges begin. A lookup reads the index, then searches only its bucket (usually 0–2 ranges),
    /// so it touches about three cache lines instead of a binary search's ~17 — the difference at 100,000 entries.
    /// Ranges that cluster into one bucket fall back to a binary search within it.
    /// </summary>
    private readonly struct RangeTable<T> where T : unmanaged, IBinaryInteger<T>, IMinMaxValue<T>
    {
        private readonly (T Start, T End)[] _ranges;
        private readonly int[] _index; // _index[b]: the first range whose bucket is b or later; _index[^1] = Count
        private readonly T _base;
        private readonly int _shift;

        public RangeTable(List<(T Start, T End)> ranges)
        {
            ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
            var merged = new List<(T Start, T End)>(ranges.Count);
            foreach (var (start, end) in ranges)
            {
                // Merge when the range overlaps or touches the previous one (the previous end + 1 cannot overflow
                // here: a previous end of MaxValue covers every later start, which the first test catches).
                if (merged.Count > 0 && (start <= merged[^1].End || start == merged[^1].End + T.One))
                {
                    if (end > merged[^1].End)
                    {
                        merged[^1] = (merged[^1].Start, end);
                    }
                    continue;
                }
                merged.Add((start, end));
            }
            _ranges = [.. merged];
            if (_ranges.Length == 0)
            {
                _index = [0];
                _base = T.Zero;
                _shift = 0;
                return;
            }
            _base = _ranges[0].Start;
            var span = _ranges[^1].Start - _base;
            var width = int.CreateTruncating(T.PopCount(T.AllBitsSet));
            var spanBits = width - int.CreateTruncating(T.LeadingZeroCount(span));
            var bucketBits = Math.Min(20, Math.Max(0, 32 - BitOperations.LeadingZeroCount((uint)_ranges.Length - 1)));
            _shift = Math.Max(0, spanBits - bucketBits);
            var buckets = int.CreateTruncating(span >> _shift) + 1;
            _index = new int[buckets + 1];
            var next = 0;
            for (var b = 0; b <= buckets; b++)
            {
                while (next < _ranges.Length && Bucket(_ranges[next].Start) < b)
                {
                    next++;
                }
                _index[b] = next;
            }
        }

        public int Count => _ranges.Length;

        /// <summary>The ranges of <paramref name="allow"/> (the whole key space when null) minus those of <paramref name="deny"/>.</summary>
        public static RangeTable<T> Difference(RangeTable<T>? allow, RangeTable<T> deny)
        {
            var a = allow is { } table ? table._ranges : [(T.Zero, T.AllBitsSet)];
            var d = deny._ranges;
            var result = new List<(T Start, T End)>(a.Length + d.Length);
            var j = 0;
            foreach (var (start, end) in a)
            {
                while (j < d.Length && d[j].End < start)
                {
                    j++;
                }
                var from = start;
                var covered = false;
                while (j < d.Length && d[j].Start <= end)
                {
                    if (d[j].Start > from)
                    {
                        result.Add((from, d[j].Start - T.One));
                    }
                    if (d[j].End >= end)
                    {
                        // This deny range reaches the next allow range too: keep j on it.
                        covered = true;
                        break;
                    }
                    from = d[j].End + T.One;
                    j++;
                }
                if (!covered)
                {
                    result.Add((from, end));
                }
            }
            return new RangeTable<T>(result);
        }

        private int Bucket(T key) => int.CreateTruncating((key - _base) >> _shift);

        public static (T Start, T End) Range(T network, int prefixLength)
        {
            var bits = int.CreateTruncating(T.PopCount(T.AllBitsSet));
            var prefix = int.Clamp(prefixLength, 0, bits);
            var host = prefix == 0 ? T.AllBitsSet : (T.One << (bits - prefix)) - T.One;
            var start = network & ~host;
            return (start, start | host);
        }

        public bool Contains(T key)
        {
            var ranges = _ranges;
            if (ranges.Length == 0 || key < _base)
            {
                return false;
            }
            if (key >= ranges[^1].Start)
            {
                return key <= ranges[^1].End;
            }
            // Every range before the key's bucket starts below the key; in the bucket, find the first that starts above it.
            var bucket = Bucket(key);
            int lo = _index[bucket], hi = _index[bucket + 1];
            while (lo < hi)
            {
                var mid = (int)((uint)(lo + hi) >> 1);
                if (ranges[mid].Start <= key)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }
            // The range before that one is the only one that can hold the key (lo > 0: range 0 starts at _base <= key).
            return key <= ranges[lo - 1].End;
        }
    }
}
