using System.Collections.Concurrent;
using System.Net;

namespace Portcullis.Network;

/// <summary>
/// Bans source addresses after repeated failures (fail2ban's rule, in process). <see cref="RecordFailure"/> counts a
/// failure; <see cref="AutoBanOptions.Failures"/> of them within the sliding <see cref="AutoBanOptions.Window"/> ban the
/// source for <see cref="AutoBanOptions.Duration"/>, doubled for each repeat ban up to
/// <see cref="AutoBanOptions.MaxDuration"/>. A source's repeat level is remembered until MaxDuration has passed since its
/// last ban expired without a new one; then its next ban is a first ban again.
/// <para>
/// <see cref="IsBanned"/> is the accept-path check: a lock-free dictionary read, no allocation. Everything that changes
/// state takes one lock and raises its events (<see cref="BanEvent"/>) after releasing it. Memory is bounded: failures
/// are tracked for at most <see cref="AutoBanOptions.MaxTrackedSources"/> sources (the least recently failing one is
/// forgotten first), and at most <see cref="AutoBanOptions.MaxBans"/> bans and as many repeat levels are kept.
/// </para>
/// <para>
/// With a state file, bans are restored at construction (expired ones dropped; a corrupt file throws
/// <see cref="AutoBanStateException"/>) and saved after a change at the next sweep, on <see cref="SaveState"/> and on
/// <see cref="Dispose"/>. All time comes from the <see cref="TimeProvider"/>.
/// </para>
/// </summary>
public sealed class AutoBanner : IDisposable
{
    private const int MaxLevel = 62;
    private static readonly TimeSpan MaxManualDuration = TimeSpan.FromDays(3650);

    private readonly AutoBanOptions _options;
    private readonly TimeProvider _time;
    private readonly Action<BanEvent>? _onEvent;
    private readonly Action<Exception>? _onBackgroundError;
    private readonly long _windowTicks;

    // Active bans; read without a lock by IsBanned, written under _gate.
    private readonly ConcurrentDictionary<UInt128, BanEntry> _bans = new();
    private volatile int _banCount;

    private readonly Lock _gate = new();
    private readonly SortedSet<(long ExpiresAt, UInt128 Key)> _banOrder = [];
    private readonly Dictionary<UInt128, (int Level, long ForgetAt)> _levels = [];
    private readonly SortedSet<(long ForgetAt, UInt128 Key)> _levelOrder = [];
    private readonly Dictionary<UInt128, LinkedListNode<Track>> _tracks = [];
    private readonly LinkedList<Track> _trackOrder = new(); // least recently failing first
    private bool _dirty;

    private readonly Lock _saveGate = new();
    private readonly ITimer? _timer;
    private bool _disposed;

    /// <param name="onEvent">Called for every ban and unban, after the change, on the thread that made it (a sweep's on a timer thread).</param>
    /// <param name="onBackgroundError">Called when the timer's sweep or save fails (e.g. the state file cannot be written); it is retried at the next sweep.</param>
    /// <exception cref="AutoBanStateException">The state file exists but cannot be read or is not a valid ban state file.</exception>
    public AutoBanner(AutoBanOptions options, TimeProvider time, Action<BanEvent>? onEvent = null, Action<Exception>? onBackgroundError = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Failures, 1, nameof(options.Failures));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Window, TimeSpan.Zero, nameof(options.Window));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Duration, TimeSpan.Zero, nameof(options.Duration));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxDuration, options.Duration, nameof(options.MaxDuration));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxTrackedSources, 1, nameof(options.MaxTrackedSources));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBans, 1, nameof(options.MaxBans));
        _options = options;
        _time = time;
        _onEvent = onEvent;
        _onBackgroundError = onBackgroundError;
        _windowTicks = options.Window.Ticks;

        if (!string.IsNullOrEmpty(options.StateFile))
        {
            Restore(BanStateFile.Read(options.StateFile));
        }
        if (options.SweepInterval > TimeSpan.Zero)
        {
            _timer = time.CreateTimer(static state => ((AutoBanner)state!).Tick(), this, options.SweepInterval, options.SweepInterval);
        }
    }

    public AutoBanOptions Options => _options;

    /// <summary>Bans in force (an expired one counts until the next sweep lifts it).</summary>
    public int ActiveBanCount => _banCount;

    /// <summary>Sources whose failures are being counted; never more than <see cref="AutoBanOptions.MaxTrackedSources"/>.</summary>
    public int TrackedSourceCount
    {
        get
        {
            lock (_gate)
            {
                return _tracks.Count;
            }
        }
    }

    /// <summary>Whether the address (IPv4-mapped IPv6 as IPv4) is banned now. Lock-free and allocation-free.</summary>
    public bool IsBanned(IPAddress address) =>
        _banCount != 0 && _bans.TryGetValue(IPKey.Unified(address), out var ban) && ban.ExpiresAt > _time.GetUtcNow();

    /// <summary>The address's ban in force, if any.</summary>
    public BanEntry? GetBan(IPAddress address) =>
        _bans.TryGetValue(IPKey.Unified(address), out var ban) && ban.ExpiresAt > _time.GetUtcNow() ? ban : null;

    /// <summary>The bans in force, soonest to expire first.</summary>
    public IReadOnlyList<BanEntry> ListBans()
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            return [.. _banOrder.Select(o => _bans[o.Key]).Where(b => b.ExpiresAt > now)];
        }
    }

    /// <summary>
    /// Counts a failure from <paramref name="address"/>. Returns the ban this failure imposed, or null. Failures from
    /// never-ban sources, from sources already banned and (unless counted) authorization failures are ignored.
    /// </summary>
    public BanEntry? RecordFailure(IPAddress address, FailureReason reason)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (reason == FailureReason.Authorization && !_options.CountAuthorizationFailures)
        {
            return null;
        }
        if (_options.NeverBan.Contains(address))
        {
            return null;
        }
        var key = IPKey.Unified(address);
        List<BanEvent>? events = null;
        BanEntry? imposed = null;
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            SweepLocked(now, ref events);
            var ticks = now.UtcTicks;
            // A source already banned is refused at accept; what it still sends on an open connection is not counted.
            var track = _bans.ContainsKey(key) ? null : TrackLocked(key, ticks);
            track?.Add(ticks);
            if (track is not null && track.Count >= _options.Failures)
            {
                var failures = track.Count;
                ForgetTrackLocked(key);
                var level = _levels.TryGetValue(key, out var remembered) && remembered.ForgetAt > ticks ? Math.Min(remembered.Level + 1, MaxLevel) : 0;
                var banReason = reason == FailureReason.Authorization ? BanReason.Authorization : BanReason.Authentication;
                imposed = new BanEntry(IPKey.ToAddress(key), banReason, failures, level, now, now + DurationAt(level), null);
                AddBanLocked(key, imposed, ref events);
            }
        }
        Raise(events);
        return imposed;
    }

    /// <summary>
    /// Bans an address by hand (an administrator), for <paramref name="duration"/> (default: the first-ban duration),
    /// replacing any ban in force. The repeat level is kept, not raised.
    /// </summary>
    /// <exception cref="ArgumentException">The address is in never-ban, or the duration is not positive.</exception>
    public BanEntry Ban(IPAddress address, TimeSpan? duration = null, string? comment = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        var length = duration ?? _options.Duration;
        if (length <= TimeSpan.Zero || length > MaxManualDuration)
        {
            throw new ArgumentException($"the ban's duration must be positive and at most {MaxManualDuration.TotalDays:0} days, not {length}", nameof(duration));
        }
        if (_options.NeverBan.Contains(address))
        {
            throw new ArgumentException($"{Cidr.Normalize(address)} is in the never-ban list and cannot be banned", nameof(address));
        }
        var key = IPKey.Unified(address);
        List<BanEvent>? events = null;
        BanEntry ban;
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            SweepLocked(now, ref events);
            var level = _levels.TryGetValue(key, out var remembered) && remembered.ForgetAt > now.UtcTicks ? remembered.Level : 0;
            var failures = _tracks.TryGetValue(key, out var node) ? node.Value.Count : 0;
            ForgetTrackLocked(key);
            RemoveBanLocked(key);
            ban = new BanEntry(IPKey.ToAddress(key), BanReason.Manual, failures, level, now, now + length, comment);
            AddBanLocked(key, ban, ref events);
        }
        Raise(events);
        return ban;
    }

    /// <summary>
    /// Lifts the address's ban by hand and forgets its repeat level and failures. Returns the lifted ban, or null when
    /// none was in force.
    /// </summary>
    public BanEntry? Unban(IPAddress address, string? comment = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        var key = IPKey.Unified(address);
        List<BanEvent>? events = null;
        BanEntry? lifted = null;
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            SweepLocked(now, ref events);
            ForgetTrackLocked(key);
            if (_levels.Remove(key, out var remembered))
            {
                _levelOrder.Remove((remembered.ForgetAt, key));
            }
            if (RemoveBanLocked(key) is { } ban)
            {
                lifted = ban;
                (events ??= []).Add(new BanEvent(BanEventKind.Unbanned, ban, UnbanReason.Manual, comment));
            }
        }
        Raise(events);
        return lifted;
    }

    /// <summary>Lifts expired bans (raising their events), forgets stale repeat levels and stale failure counts.</summary>
    public void Sweep()
    {
        List<BanEvent>? events = null;
        lock (_gate)
        {
            SweepLocked(_time.GetUtcNow(), ref events);
        }
        Raise(events);
    }

    /// <summary>Writes the bans in force to the state file now (no-op without one).</summary>
    /// <exception cref="AutoBanStateException">The file cannot be written.</exception>
    public void SaveState()
    {
        if (string.IsNullOrEmpty(_options.StateFile))
        {
            return;
        }
        lock (_saveGate)
        {
            List<BanEntry> snapshot;
            lock (_gate)
            {
                var now = _time.GetUtcNow();
                snapshot = [.. _banOrder.Select(o => _bans[o.Key]).Where(b => b.ExpiresAt > now)];
                _dirty = false;
            }
            try
            {
                BanStateFile.Write(_options.StateFile, snapshot);
            }
            catch
            {
                lock (_gate)
                {
                    _dirty = true;
                }
                throw;
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
        }
        _timer?.Dispose();
        SaveIfDirty();
    }

    private void Tick()
    {
        try
        {
            Sweep();
            SaveIfDirty();
        }
        catch (Exception e)
        {
            _onBackgroundError?.Invoke(e);
        }
    }

    private void SaveIfDirty()
    {
        bool dirty;
        lock (_gate)
        {
            dirty = _dirty;
        }
        if (!dirty)
        {
            return;
        }
        try
        {
            SaveState();
        }
        catch (AutoBanStateException e)
        {
            _onBackgroundError?.Invoke(e);
        }
    }

    private TimeSpan DurationAt(int level)
    {
        var max = _options.MaxDuration.Ticks;
        var ticks = _options.Duration.Ticks;
        for (var i = 0; i < level && ticks < max; i++)
        {
            ticks = ticks > max / 2 ? max : ticks * 2;
        }
        return TimeSpan.FromTicks(Math.Min(ticks, max));
    }

    private void Restore(List<BanEntry> saved)
    {
        var now = _time.GetUtcNow();
        List<BanEvent>? ignored = null;
        lock (_gate)
        {
            foreach (var ban in saved.Where(b => b.ExpiresAt > now).OrderBy(b => b.ExpiresAt))
            {
                var key = IPKey.Unified(ban.Address);
                RemoveBanLocked(key);
                AddBanLocked(key, ban with { Address = IPKey.ToAddress(key), Level = Math.Min(ban.Level, MaxLevel) }, ref ignored);
            }
            _dirty = false;
        }
    }

    private void AddBanLocked(UInt128 key, BanEntry ban, ref List<BanEvent>? events)
    {
        RemoveBanLocked(key);
        while (_banOrder.Count >= _options.MaxBans && RemoveBanLocked(_banOrder.Min.Key) is { } victim)
        {
            (events ??= []).Add(new BanEvent(BanEventKind.Unbanned, victim, UnbanReason.Evicted, victim.Comment));
        }
        _bans[key] = ban;
        _banOrder.Add((ban.ExpiresAt.UtcTicks, key));
        _banCount = _banOrder.Count;
        // Saturating: a restored ban may expire near the end of time.
        var expires = ban.ExpiresAt.UtcTicks;
        var remember = _options.MaxDuration.Ticks;
        RememberLevelLocked(key, ban.Level, expires > long.MaxValue - remember ? long.MaxValue : expires + remember);
        _dirty = true;
        (events ??= []).Add(new BanEvent(BanEventKind.Banned, ban, null, ban.Comment));
    }

    /// <summary>Removes the key's ban from the table and its order; the count is kept beside them (ConcurrentDictionary.Count takes every lock).</summary>
    private BanEntry? RemoveBanLocked(UInt128 key)
    {
        if (!_bans.TryRemove(key, out var ban))
        {
            return null;
        }
        _banOrder.Remove((ban.ExpiresAt.UtcTicks, key));
        _banCount = _banOrder.Count;
        _dirty = true;
        return ban;
    }

    private void RememberLevelLocked(UInt128 key, int level, long forgetAt)
    {
        if (_levels.Remove(key, out var old))
        {
            _levelOrder.Remove((old.ForgetAt, key));
        }
        while (_levels.Count >= _options.MaxBans && _levelOrder.Count > 0)
        {
            var oldest = _levelOrder.Min;
            _levelOrder.Remove(oldest);
            _levels.Remove(oldest.Key);
        }
        _levels[key] = (level, forgetAt);
        _levelOrder.Add((forgetAt, key));
    }

    private void SweepLocked(DateTimeOffset now, ref List<BanEvent>? events)
    {
        var ticks = now.UtcTicks;
        while (_banOrder.Count > 0 && _banOrder.Min.ExpiresAt <= ticks && RemoveBanLocked(_banOrder.Min.Key) is { } ban)
        {
            (events ??= []).Add(new BanEvent(BanEventKind.Unbanned, ban, UnbanReason.Expired, ban.Comment));
        }
        while (_levelOrder.Count > 0 && _levelOrder.Min.ForgetAt <= ticks)
        {
            var oldest = _levelOrder.Min;
            _levelOrder.Remove(oldest);
            _levels.Remove(oldest.Key);
        }
        // Sources whose newest failure left the window have nothing left to count.
        while (_trackOrder.First is { } first && first.Value.Newest <= ticks - _windowTicks)
        {
            _trackOrder.RemoveFirst();
            _tracks.Remove(first.Value.Key);
        }
    }

    private Track TrackLocked(UInt128 key, long now)
    {
        if (_tracks.TryGetValue(key, out var node))
        {
            _trackOrder.Remove(node);
            _trackOrder.AddLast(node);
            node.Value.DropOlderThan(now - _windowTicks);
            return node.Value;
        }
        if (_tracks.Count >= _options.MaxTrackedSources && _trackOrder.First is { } oldest)
        {
            // Full: the least recently failing source is forgotten, and its node reused for the new one.
            _trackOrder.RemoveFirst();
            _tracks.Remove(oldest.Value.Key);
            oldest.Value.Reset(key);
            node = oldest;
        }
        else
        {
            node = new LinkedListNode<Track>(new Track(key, Math.Min(_options.Failures, 4)));
        }
        _trackOrder.AddLast(node);
        _tracks[key] = node;
        return node.Value;
    }

    private void ForgetTrackLocked(UInt128 key)
    {
        if (_tracks.Remove(key, out var node))
        {
            _trackOrder.Remove(node);
        }
    }

    private void Raise(List<BanEvent>? events)
    {
        if (events is not null && _onEvent is not null)
        {
            foreach (var e in events)
            {
                _onEvent(e);
            }
        }
    }

    /// <summary>One source's failure times within the window, oldest first, in a ring that grows up to the threshold.</summary>
    private sealed class Track(UInt128 key, int capacity)
    {
        private long[] _times = new long[capacity];
        private int _head;

        public UInt128 Key { get; private set; } = key;

        public int Count { get; private set; }

        public long Newest => Count == 0 ? long.MinValue : _times[(_head + Count - 1) % _times.Length];

        public void Reset(UInt128 key)
        {
            Key = key;
            _head = 0;
            Count = 0;
        }

        public void DropOlderThan(long cutoff)
        {
            // A failure exactly one window old no longer counts: the window is (now - window, now].
            while (Count > 0 && _times[_head] <= cutoff)
            {
                _head = (_head + 1) % _times.Length;
                Count--;
            }
        }

        public void Add(long time)
        {
            if (Count == _times.Length)
            {
                var grown = new long[_times.Length * 2];
                for (var i = 0; i < Count; i++)
                {
                    grown[i] = _times[(_head + i) % _times.Length];
                }
                _times = grown;
                _head = 0;
            }
            _times[(_head + Count) % _times.Length] = time;
            Count++;
        }
    }
}
