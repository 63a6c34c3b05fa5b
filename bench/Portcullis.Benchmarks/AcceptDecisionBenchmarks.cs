using System.Net;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using Portcullis.Network;

namespace Portcullis.Benchmarks;

/// <summary>
/// The accept-time decision — allowed by <c>network.allow</c>, not in <c>network.deny</c>, not banned — with 100,000
/// allow CIDRs, 100,000 deny CIDRs and 100,000 bans, per address family. "Naive" is the linear scan CidrSet used before
/// (<see cref="Cidr.Contains"/> over every entry) with the bans as one more scanned list; "Sets" is two CidrSet range
/// searches (as the gateway checks allow and deny today) and <see cref="AutoBanner.IsBanned"/>; "Access" is one
/// <see cref="NetworkAccess"/> search (allow minus deny, built at load) and IsBanned. Each operation decides one of
/// 1,024 addresses in turn: most inside an allow entry (so the deny and ban checks run too), some denied, some banned,
/// some outside every allow entry.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[Config(typeof(TrendRatio))]
public class AcceptDecisionBenchmarks
{
    /// <summary>Ratios as "N× faster": against a millisecond baseline the default decimal ratio prints 0.000.</summary>
    private sealed class TrendRatio : ManualConfig
    {
        public TrendRatio() => SummaryStyle = SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend);
    }

    private const int Entries = 100_000;

    private CidrSet _allow = null!;
    private CidrSet _deny = null!;
    private NetworkAccess _access = null!;
    private Cidr[] _bannedList = null!;
    private AutoBanner _banner = null!;
    private IPAddress[] _probes = null!;
    private int _next;

    [Params("IPv4", "IPv6")]
    public string Family { get; set; } = "IPv4";

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(20261205);
        var v4 = Family == "IPv4";
        IPAddress RandomAddress()
        {
            var bytes = new byte[v4 ? 4 : 16];
            rng.NextBytes(bytes);
            if (!v4)
            {
                bytes[0] = 0x20; // global unicast, never IPv4-mapped
            }
            return new IPAddress(bytes);
        }
        Cidr RandomCidr(IPAddress address) => Cidr.TryParse($"{address}/{(v4 ? rng.Next(24, 33) : rng.Next(48, 129))}", out var c) ? c : throw new InvalidOperationException();

        // Probes: 70 % allowed (an allow entry's own address), 10 % denied and 10 % banned (each also allowed, by a
        // /32 or /128 allow entry, so that the check that refuses it runs), 10 % outside every allow entry.
        var denyAddresses = Enumerable.Range(0, Entries).Select(_ => RandomAddress()).ToArray();
        var banned = Enumerable.Range(0, Entries).Select(_ => RandomAddress()).ToArray();
        var allowAddresses = Enumerable.Range(0, Entries).Select(_ => RandomAddress()).ToArray();
        var allow = allowAddresses.Select(RandomCidr).ToArray();
        var probes = new IPAddress[1024];
        for (var i = 0; i < probes.Length; i++)
        {
            probes[i] = (i % 10) switch
            {
                < 7 => allowAddresses[rng.Next(Entries / 2)],
                7 => denyAddresses[rng.Next(Entries)],
                8 => banned[rng.Next(Entries)],
                _ => RandomAddress(),
            };
            if (i % 10 is 7 or 8)
            {
                allow[Entries - 1 - i] = new Cidr(probes[i], v4 ? 32 : 128); // the list stays at 100,000 entries
            }
        }
        _probes = probes;
        _allow = new CidrSet(allow);
        _deny = new CidrSet(denyAddresses.Select(RandomCidr));
        _access = new NetworkAccess(_allow, _deny);
        _bannedList = [.. banned.Select(a => new Cidr(a, v4 ? 32 : 128))];
        _banner = new AutoBanner(new AutoBanOptions { MaxBans = Entries, SweepInterval = TimeSpan.Zero }, TimeProvider.System);
        foreach (var address in banned)
        {
            _banner.Ban(address, TimeSpan.FromDays(1));
        }

        // Both ways must decide alike, and the mix must be what it says.
        var allowed = 0;
        foreach (var ip in probes)
        {
            var naive = Scan(_allow.Items, ip) && !Scan(_deny.Items, ip) && !Scan(_bannedList, ip);
            var fast = _allow.Contains(ip) && !_deny.Contains(ip) && !_banner.IsBanned(ip);
            if (naive != fast || fast != (_access.IsAllowed(ip) && !_banner.IsBanned(ip)))
            {
                throw new InvalidOperationException($"naive and fast decide differently for {ip}");
            }
            allowed += fast ? 1 : 0;
        }
        if (allowed is < 680 or > 760)
        {
            throw new InvalidOperationException($"{allowed} of 1024 probes allowed, not about 70 %");
        }
        _next = 0;
    }

    [GlobalCleanup]
    public void Cleanup() => _banner.Dispose();

    private IPAddress NextProbe()
    {
        var probe = _probes[_next];
        _next = (_next + 1) & 1023;
        return probe;
    }

    [Benchmark(Baseline = true)]
    public bool Naive()
    {
        var ip = NextProbe();
        return Scan(_allow.Items, ip) && !Scan(_deny.Items, ip) && !Scan(_bannedList, ip);
    }

    [Benchmark]
    public bool Sets()
    {
        var ip = NextProbe();
        return _allow.Contains(ip) && !_deny.Contains(ip) && !_banner.IsBanned(ip);
    }

    [Benchmark]
    public bool Access()
    {
        var ip = NextProbe();
        return _access.IsAllowed(ip) && !_banner.IsBanned(ip);
    }

    /// <summary>The ban lookup alone, over the same addresses.</summary>
    [Benchmark]
    public bool BanLookup() => _banner.IsBanned(NextProbe());

    private static bool Scan(IReadOnlyList<Cidr> cidrs, IPAddress address)
    {
        for (var i = 0; i < cidrs.Count; i++)
        {
            if (cidrs[i].Contains(address))
            {
                return true;
            }
        }
        return false;
    }
}
