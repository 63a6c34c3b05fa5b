using System.Net;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Network;

namespace Portcullis.Core.Tests.Network;

public sealed class AutoBannerTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 12, 5, 10, 0, 0, TimeSpan.Zero);
    private static readonly IPAddress Attacker = IPAddress.Parse("192.0.2.7");
    private static readonly IPAddress Bystander = IPAddress.Parse("192.0.2.8");

    private readonly FakeTimeProvider _time = new(Start);
    private readonly List<BanEvent> _events = [];
    private readonly List<Exception> _errors = [];
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-bans-").FullName;
    private readonly List<AutoBanner> _banners = [];

    public void Dispose()
    {
        foreach (var banner in _banners)
        {
            banner.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }

    private AutoBanner Create(AutoBanOptions? options = null)
    {
        var banner = new AutoBanner(options ?? new AutoBanOptions(), _time, e =>
        {
            lock (_events)
            {
                _events.Add(e);
            }
        }, _errors.Add);
        _banners.Add(banner);
        return banner;
    }

    private static void Fail(AutoBanner banner, IPAddress address, int times, FailureReason reason = FailureReason.Authentication)
    {
        for (var i = 0; i < times; i++)
        {
            banner.RecordFailure(address, reason);
        }
    }

    [Fact]
    public void Nineteen_failures_do_not_ban_the_twentieth_does()
    {
        var banner = Create();
        for (var i = 0; i < 19; i++)
        {
            Assert.Null(banner.RecordFailure(Attacker, FailureReason.Authentication));
            _time.Advance(TimeSpan.FromSeconds(3)); // 19 failures over 57 s, all inside the 60 s window
        }
        Assert.False(banner.IsBanned(Attacker));
        Assert.Empty(_events);

        var ban = banner.RecordFailure(Attacker, FailureReason.Authentication);

        Assert.NotNull(ban);
        Assert.True(banner.IsBanned(Attacker));
        Assert.False(banner.IsBanned(Bystander));
        var e = Assert.Single(_events);
        Assert.Equal(BanEventKind.Banned, e.Kind);
        Assert.Equal(Attacker, e.Address);
        Assert.Equal(BanReason.Authentication, e.Reason);
        Assert.Equal(20, e.Failures);
        Assert.Equal(TimeSpan.FromMinutes(15), e.Duration);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromMinutes(15), e.ExpiresAt);
        Assert.Equal(0, e.Ban.Level);
        Assert.Equal(1, banner.ActiveBanCount);
        Assert.Equal(0, banner.TrackedSourceCount); // the banned source's count is done with
    }

    [Fact]
    public void Failures_older_than_the_window_do_not_count()
    {
        var banner = Create();
        Fail(banner, Attacker, 10);                 // t = 0
        _time.Advance(TimeSpan.FromSeconds(30));
        Fail(banner, Attacker, 9);                  // t = 30: 19 in the window
        _time.Advance(TimeSpan.FromSeconds(30));    // t = 60: the first 10 are exactly one window old and leave it
        Fail(banner, Attacker, 10);                 // 9 + 10 = 19 in the window
        Assert.False(banner.IsBanned(Attacker));

        _time.Advance(TimeSpan.FromSeconds(29));    // t = 89: the 9 from t = 30 are still in
        Assert.NotNull(banner.RecordFailure(Attacker, FailureReason.Authentication));
        Assert.True(banner.IsBanned(Attacker));
        Assert.Equal(20, Assert.Single(_events).Failures);
    }

    [Fact]
    public void Repeat_bans_double_up_to_the_maximum()
    {
        var banner = Create(new AutoBanOptions { Failures = 3, Duration = TimeSpan.FromMinutes(15), MaxDuration = TimeSpan.FromHours(1) });
        var durations = new List<TimeSpan>();
        for (var round = 0; round < 5; round++)
        {
            Fail(banner, Attacker, 3);
            var ban = banner.GetBan(Attacker) ?? throw new InvalidOperationException("not banned in round " + round);
            Assert.Equal(round, ban.Level);
            durations.Add(ban.Duration);
            _time.Advance(ban.Duration);
            Assert.False(banner.IsBanned(Attacker));
            _time.Advance(TimeSpan.FromMinutes(10)); // well inside the 1 h during which the level is remembered
        }
        Assert.Equal([TimeSpan.FromMinutes(15), TimeSpan.FromMinutes(30), TimeSpan.FromHours(1), TimeSpan.FromHours(1), TimeSpan.FromHours(1)], durations);
    }

    [Fact]
    public void Repeat_level_is_forgotten_after_max_duration_without_a_ban()
    {
        var banner = Create(new AutoBanOptions { Failures = 3, Duration = TimeSpan.FromMinutes(15), MaxDuration = TimeSpan.FromHours(1) });
        Fail(banner, Attacker, 3);
        _time.Advance(TimeSpan.FromMinutes(15));     // first ban expires
        _time.Advance(TimeSpan.FromMinutes(59));     // remembered for 1 h after its expiry
        Fail(banner, Attacker, 3);
        Assert.Equal(TimeSpan.FromMinutes(30), banner.GetBan(Attacker)!.Duration);

        _time.Advance(TimeSpan.FromMinutes(30) + TimeSpan.FromHours(1)); // expired, then 1 h without a ban
        Fail(banner, Attacker, 3);
        var ban = banner.GetBan(Attacker)!;
        Assert.Equal(0, ban.Level);
        Assert.Equal(TimeSpan.FromMinutes(15), ban.Duration);
    }

    [Fact]
    public void A_ban_expires_at_its_time_and_the_sweep_raises_the_unban()
    {
        var banner = Create(new AutoBanOptions { Failures = 2, SweepInterval = TimeSpan.FromSeconds(1) });
        Fail(banner, Attacker, 2);
        _time.Advance(TimeSpan.FromMinutes(15) - TimeSpan.FromTicks(1));
        Assert.True(banner.IsBanned(Attacker));
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.False(banner.IsBanned(Attacker)); // at once, before any sweep
        _time.Advance(TimeSpan.FromSeconds(1));  // the timer's sweep
        Assert.Equal([BanEventKind.Banned, BanEventKind.Unbanned], _events.Select(e => e.Kind));
        Assert.Equal(UnbanReason.Expired, _events[1].UnbanReason);
        Assert.Equal(Attacker, _events[1].Address);
        Assert.Equal(0, banner.ActiveBanCount);
        Assert.Empty(banner.ListBans());
        Assert.Empty(_errors);
    }

    [Fact]
    public void Manual_ban_and_unban_carry_their_comment_and_unban_forgets_the_level()
    {
        var banner = Create(new AutoBanOptions { Failures = 3 });
        var ban = banner.Ban(Attacker, TimeSpan.FromHours(2), "incident 7");
        Assert.True(banner.IsBanned(Attacker));
        Assert.Equal(BanReason.Manual, ban.Reason);
        Assert.Equal(TimeSpan.FromHours(2), ban.Duration);
        Assert.Equal([ban], banner.ListBans());

        var lifted = banner.Unban(Attacker, "false positive");
        Assert.Equal(ban, lifted);
        Assert.False(banner.IsBanned(Attacker));
        Assert.Null(banner.Unban(Attacker)); // nothing in force: no second event

        Assert.Collection(_events,
            e => { Assert.Equal(BanEventKind.Banned, e.Kind); Assert.Equal("incident 7", e.Comment); Assert.Equal(BanReason.Manual, e.Reason); },
            e => { Assert.Equal(BanEventKind.Unbanned, e.Kind); Assert.Equal(UnbanReason.Manual, e.UnbanReason); Assert.Equal("false positive", e.Comment); });

        // After an unban the source starts from scratch: three new failures give a first (level 0) ban.
        Fail(banner, Attacker, 2);
        Assert.False(banner.IsBanned(Attacker));
        Fail(banner, Attacker, 1);
        Assert.Equal(0, banner.GetBan(Attacker)!.Level);
        Assert.Equal(TimeSpan.FromMinutes(15), banner.GetBan(Attacker)!.Duration);
    }

    [Fact]
    public void A_manual_ban_needs_a_positive_bounded_duration()
    {
        var banner = Create();
        Assert.Throws<ArgumentException>(() => banner.Ban(Attacker, TimeSpan.Zero));
        Assert.Throws<ArgumentException>(() => banner.Ban(Attacker, TimeSpan.MaxValue));
        Assert.False(banner.IsBanned(Attacker));
        Assert.Empty(_events);
    }

    [Fact]
    public void An_automatic_ban_can_be_lifted_by_hand_before_it_expires()
    {
        var banner = Create(new AutoBanOptions { Failures = 2 });
        Fail(banner, Attacker, 2);
        Assert.True(banner.IsBanned(Attacker));
        Assert.Equal(BanReason.Authentication, banner.Unban(Attacker)!.Reason);
        Assert.False(banner.IsBanned(Attacker));
    }

    [Fact]
    public void Never_ban_sources_are_neither_banned_nor_tracked()
    {
        var banner = Create(new AutoBanOptions { Failures = 2, NeverBan = CidrSet.Parse(["10.0.0.0/8", "2001:db8::/32"]) });
        var monitor = IPAddress.Parse("10.1.2.3");
        Fail(banner, monitor, 1000);
        Fail(banner, IPAddress.Parse("::ffff:10.1.2.3"), 1000);
        Fail(banner, IPAddress.Parse("2001:db8::5"), 1000);
        Assert.False(banner.IsBanned(monitor));
        Assert.Equal(0, banner.TrackedSourceCount);
        Assert.Empty(_events);
        var refused = Assert.Throws<ArgumentException>(() => banner.Ban(monitor, null, "oops"));
        Assert.Contains("10.1.2.3 is in the never-ban list", refused.Message, StringComparison.Ordinal);
        Assert.False(banner.IsBanned(monitor));
    }

    [Fact]
    public void Authorization_failures_count_only_when_configured()
    {
        var ignoring = Create(new AutoBanOptions { Failures = 2 });
        Fail(ignoring, Attacker, 10, FailureReason.Authorization);
        Assert.False(ignoring.IsBanned(Attacker));
        Assert.Equal(0, ignoring.TrackedSourceCount);

        var counting = Create(new AutoBanOptions { Failures = 2, CountAuthorizationFailures = true });
        Fail(counting, Attacker, 2, FailureReason.Authorization);
        Assert.Equal(BanReason.Authorization, counting.GetBan(Attacker)!.Reason);
    }

    [Fact]
    public void An_IPv4_address_and_its_mapped_IPv6_form_are_one_source()
    {
        var banner = Create(new AutoBanOptions { Failures = 4 });
        var mapped = IPAddress.Parse("::ffff:192.0.2.7");
        Fail(banner, Attacker, 2);
        Fail(banner, mapped, 2);
        Assert.True(banner.IsBanned(Attacker));
        Assert.True(banner.IsBanned(mapped));
        Assert.Equal(Attacker, Assert.Single(_events).Address); // reported as IPv4
        var v6 = IPAddress.Parse("2001:db8::7");
        Fail(banner, v6, 4);
        Assert.True(banner.IsBanned(v6));
        Assert.Equal(v6, _events[^1].Address);
    }

    [Fact]
    public void State_file_round_trip_keeps_unexpired_bans_with_their_level_and_drops_expired_ones()
    {
        var file = Path.Combine(_dir, "bans.json");
        var options = new AutoBanOptions { Failures = 2, Duration = TimeSpan.FromMinutes(15), MaxDuration = TimeSpan.FromHours(4), StateFile = file };
        var first = Create(options);
        Fail(first, Attacker, 2);
        _time.Advance(TimeSpan.FromMinutes(16));
        Fail(first, Attacker, 2);                       // repeat: level 1, 30 min
        var shortLived = IPAddress.Parse("2001:db8::9");
        first.Ban(shortLived, TimeSpan.FromMinutes(5), "short");
        first.SaveState();
        Assert.Equal(["bans.json"], Directory.GetFiles(_dir).Select(Path.GetFileName)); // no temporary file left

        _time.Advance(TimeSpan.FromMinutes(10));        // the 5-minute ban has expired while "down"
        var second = Create(options);
        Assert.True(second.IsBanned(Attacker));
        Assert.False(second.IsBanned(shortLived));
        var restored = Assert.Single(second.ListBans());
        Assert.Equal(1, restored.Level);
        Assert.Equal(TimeSpan.FromMinutes(30), restored.Duration);
        Assert.Equal(BanReason.Authentication, restored.Reason);
        Assert.Equal(2, restored.Failures);

        // The level survived the restart: the next ban after this one expires is the third, 60 min.
        _time.Advance(TimeSpan.FromMinutes(25));
        Fail(second, Attacker, 2);
        Assert.Equal(TimeSpan.FromHours(1), second.GetBan(Attacker)!.Duration);
        second.SaveState();
        var text = File.ReadAllText(file);
        Assert.DoesNotContain("2001:db8::9", text, StringComparison.Ordinal);
        Assert.Contains("\"level\": 2", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_change_is_saved_by_the_next_sweep_without_an_explicit_save()
    {
        var file = Path.Combine(_dir, "bans.json");
        var banner = Create(new AutoBanOptions { Failures = 2, StateFile = file, SweepInterval = TimeSpan.FromSeconds(1) });
        Fail(banner, Attacker, 2);
        Assert.False(File.Exists(file));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Contains("192.0.2.7", File.ReadAllText(file), StringComparison.Ordinal);

        _time.Advance(TimeSpan.FromMinutes(15));      // expiry, swept and saved
        Assert.DoesNotContain("192.0.2.7", File.ReadAllText(file), StringComparison.Ordinal);
        Assert.Empty(_errors);
    }

    [Fact]
    public void A_state_file_that_cannot_be_written_is_reported_and_retried()
    {
        var file = Path.Combine(_dir, "missing-dir", "bans.json");
        var banner = Create(new AutoBanOptions { Failures = 2, StateFile = file, SweepInterval = TimeSpan.FromSeconds(1) });
        Fail(banner, Attacker, 2);
        _time.Advance(TimeSpan.FromSeconds(1));
        var error = Assert.IsType<AutoBanStateException>(Assert.Single(_errors));
        Assert.StartsWith(file + ": the ban state file cannot be written", error.Message, StringComparison.Ordinal);

        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Contains("192.0.2.7", File.ReadAllText(file), StringComparison.Ordinal);
        Assert.Single(_errors);
    }

    [Theory]
    [InlineData("{\"version\": 1, \"bans\": [\n  {\"address\": ", ":2: the ban state file is not valid JSON")]
    [InlineData("[]", ": (root): must be an object")]
    [InlineData("{\"version\": 7, \"bans\": []}", ": version: must be 1")]
    [InlineData("{\"version\": 1, \"bans\": [{\"address\": \"not-an-ip\", \"reason\": \"manual\", \"failures\": 0, \"level\": 0, \"bannedAt\": \"2026-12-05T10:00:00Z\", \"expiresAt\": \"2026-12-05T11:00:00Z\"}]}", ": bans[0].address: \"not-an-ip\" is not an IP address")]
    [InlineData("{\"version\": 1, \"bans\": [{\"address\": \"192.0.2.1\", \"reason\": \"boredom\", \"failures\": 0, \"level\": 0, \"bannedAt\": \"2026-12-05T10:00:00Z\", \"expiresAt\": \"2026-12-05T11:00:00Z\"}]}", ": bans[0].reason: \"boredom\" is not one of")]
    [InlineData("{\"version\": 1, \"bans\": [{\"address\": \"192.0.2.1\", \"reason\": \"manual\", \"failures\": 0, \"level\": 0, \"bannedAt\": \"2026-12-05T10:00:00Z\", \"expiresAt\": \"yesterday\"}]}", ": bans[0].expiresAt: must be an RFC 3339 time")]
    [InlineData("{\"version\": 1, \"bans\": [{\"address\": \"192.0.2.1\", \"reason\": \"manual\", \"failures\": -1, \"level\": 0, \"bannedAt\": \"2026-12-05T10:00:00Z\", \"expiresAt\": \"2026-12-05T11:00:00Z\"}]}", ": bans[0].failures: must be a whole number")]
    public void A_corrupt_state_file_is_an_error_naming_the_file(string content, string expected)
    {
        var file = Path.Combine(_dir, "bans.json");
        File.WriteAllText(file, content);
        var error = Assert.Throws<AutoBanStateException>(() => Create(new AutoBanOptions { StateFile = file }));
        Assert.StartsWith(file + expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message); // one line: no stack trace, no exception type
        Assert.DoesNotContain("Exception", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_state_file_with_extreme_values_restores_without_overflow()
    {
        var file = Path.Combine(_dir, "bans.json");
        File.WriteAllText(file, """
            {"version": 1, "bans": [{"address": "192.0.2.7", "reason": "authentication", "failures": 20, "level": 2147483647,
              "bannedAt": "2026-12-05T10:00:00Z", "expiresAt": "9999-12-31T23:59:59Z"}]}
            """);
        var banner = Create(new AutoBanOptions { StateFile = file, Failures = 2, MaxDuration = TimeSpan.FromHours(24) });
        Assert.True(banner.IsBanned(Attacker));
        Assert.Equal(62, Assert.Single(banner.ListBans()).Level);
        Assert.Equal(BanReason.Manual, banner.Ban(Attacker, TimeSpan.FromHours(1)).Reason); // replacing it works too
    }

    [Fact]
    public void A_missing_state_file_is_an_empty_start()
    {
        var banner = Create(new AutoBanOptions { StateFile = Path.Combine(_dir, "new.json") });
        Assert.Empty(banner.ListBans());
    }

    [Fact]
    public void Tracking_stays_at_its_cap_under_a_million_distinct_sources_and_a_steady_attacker_is_still_banned()
    {
        const int cap = 10_000;
        var banner = Create(new AutoBanOptions { MaxTrackedSources = cap, SweepInterval = TimeSpan.Zero });
        var bytes = IPAddress.Parse("2001:db8::").GetAddressBytes();
        var most = 0;
        for (var i = 0; i < 1_000_000; i++)
        {
            bytes[12] = (byte)(i >> 24);
            bytes[13] = (byte)(i >> 16);
            bytes[14] = (byte)(i >> 8);
            bytes[15] = (byte)i;
            banner.RecordFailure(new IPAddress(bytes), FailureReason.Authentication);
            if (i % 500 == 0)
            {
                banner.RecordFailure(Attacker, FailureReason.Authentication); // fails again before cap others push it out
            }
            if (i % 50_000 == 0)
            {
                most = Math.Max(most, banner.TrackedSourceCount);
            }
        }
        Assert.Equal(cap, banner.TrackedSourceCount);
        Assert.True(most <= cap, $"tracked {most}");
        Assert.True(banner.IsBanned(Attacker));
        Assert.Equal(Attacker, Assert.Single(_events).Address);
    }

    [Fact]
    public async Task Many_threads_failing_for_one_source_ban_it_exactly_once()
    {
        var banner = Create(new AutoBanOptions { Failures = 20, SweepInterval = TimeSpan.Zero });
        using var go = new ManualResetEventSlim();
        var imposed = 0;
        var workers = Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            go.Wait(TimeSpan.FromSeconds(30));
            for (var i = 0; i < 1000; i++)
            {
                if (banner.RecordFailure(Attacker, FailureReason.Authentication) is not null)
                {
                    Interlocked.Increment(ref imposed);
                }
            }
        })).ToArray();
        go.Set();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, imposed);
        Assert.Equal(BanEventKind.Banned, Assert.Single(_events).Kind);
        Assert.True(banner.IsBanned(Attacker));
    }

    [Fact]
    public void A_full_ban_table_evicts_the_ban_that_expires_soonest_and_says_so()
    {
        var banner = Create(new AutoBanOptions { MaxBans = 3 });
        banner.Ban(IPAddress.Parse("192.0.2.1"), TimeSpan.FromHours(3));
        banner.Ban(IPAddress.Parse("192.0.2.2"), TimeSpan.FromHours(1));
        banner.Ban(IPAddress.Parse("192.0.2.3"), TimeSpan.FromHours(2));
        banner.Ban(IPAddress.Parse("192.0.2.4"), TimeSpan.FromHours(4));
        Assert.Equal(3, banner.ActiveBanCount);
        Assert.False(banner.IsBanned(IPAddress.Parse("192.0.2.2")));
        var evicted = Assert.Single(_events, e => e.Kind == BanEventKind.Unbanned);
        Assert.Equal(UnbanReason.Evicted, evicted.UnbanReason);
        Assert.Equal(IPAddress.Parse("192.0.2.2"), evicted.Address);
    }

    [Fact]
    public void IsBanned_does_not_allocate()
    {
        var banner = Create(new AutoBanOptions { Failures = 1 });
        banner.RecordFailure(Attacker, FailureReason.Authentication);
        var mapped = IPAddress.Parse("::ffff:192.0.2.7");
        var v6 = IPAddress.Parse("2001:db8::1");
        Assert.True(banner.IsBanned(Attacker) && banner.IsBanned(mapped) && !banner.IsBanned(v6) && !banner.IsBanned(Bystander));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var count = 0;
        for (var i = 0; i < 1000; i++)
        {
            count += (banner.IsBanned(Attacker) ? 1 : 0) + (banner.IsBanned(mapped) ? 1 : 0) + (banner.IsBanned(v6) ? 1 : 0) + (banner.IsBanned(Bystander) ? 1 : 0);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(2000, count);
    }
}
