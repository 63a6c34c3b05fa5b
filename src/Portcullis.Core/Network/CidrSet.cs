using System.Net;
using System.Net.Sockets;

namespace Portcullis.Network;

/// <summary>An IPv4/IPv6 network in CIDR form. IPv4-mapped IPv6 addresses are compared as IPv4.</summary>
public readonly record struct Cidr(IPAddress Network, int PrefixLength)
{
    public static bool TryParse(string text, out Cidr cidr)
    {
        cidr = default;
        var s = text.Trim();
        var slash = s.IndexOf('/', StringComparison.Ordinal);
        var addressPart = slash < 0 ? s : s[..slash];
        if (!IPAddress.TryParse(addressPart, out var address))
        {
            return false;
        }
        address = Normalize(address);
        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = max;
        if (slash >= 0 && (!int.TryParse(s.AsSpan(slash + 1), out prefix) || prefix < 0 || prefix > max))
        {
            return false;
        }
        cidr = new Cidr(Mask(address, prefix), prefix);
        return true;
    }

    public bool Contains(IPAddress address)
    {
        address = Normalize(address);
        if (address.AddressFamily != Network.AddressFamily)
        {
            return false;
        }
        Span<byte> a = stackalloc byte[16];
        Span<byte> n = stackalloc byte[16];
        address.TryWriteBytes(a, out var length);
        Network.TryWriteBytes(n, out _);
        var full = PrefixLength / 8;
        if (!a[..full].SequenceEqual(n[..full]))
        {
            return false;
        }
        var rest = PrefixLength % 8;
        if (rest == 0 || full >= length)
        {
            return true;
        }
        var mask = (byte)(0xFF << (8 - rest));
        return (a[full] & mask) == (n[full] & mask);
    }

    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static IPAddress Mask(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var bits = Math.Clamp(prefix - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - bits));
        }
        return new IPAddress(bytes);
    }

    public override string ToString() => $"{Network}/{PrefixLength}";
}

/// <summary>
/// An immutable set of CIDRs. <see cref="Contains"/> is a bucket-indexed search over merged ranges (O(log n) at worst, no
/// allocation); its answers equal a scan of <see cref="Cidr.Contains"/> over <see cref="Items"/>.
/// </summary>
public sealed class CidrSet
{
    private readonly Cidr[] _cidrs;
    private readonly CidrMatcher _matcher;

    public CidrSet(IEnumerable<Cidr> cidrs)
    {
        _cidrs = [.. cidrs];
        _matcher = new CidrMatcher(_cidrs);
    }

    public static CidrSet Empty { get; } = new([]);

    public bool IsEmpty => _cidrs.Length == 0;

    internal CidrMatcher Matcher => _matcher;

    public IReadOnlyList<Cidr> Items => _cidrs;

    /// <summary>Parses a list; entries that do not parse are reported through <paramref name="onError"/>.</summary>
    public static CidrSet Parse(IEnumerable<string> entries, Action<int, string>? onError = null)
    {
        var list = new List<Cidr>();
        var index = 0;
        foreach (var entry in entries)
        {
            if (Cidr.TryParse(entry, out var cidr))
            {
                list.Add(cidr);
            }
            else
            {
                onError?.Invoke(index, entry);
            }
            index++;
        }
        return new CidrSet(list);
    }

    public bool Contains(IPAddress address) => _cidrs.Length != 0 && _matcher.Contains(address);
}
