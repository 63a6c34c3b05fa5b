namespace Portcullis.Gateway.Snapshots;

/// <summary>
/// Watches the configuration file and every file the current snapshot names; a burst of changes is folded into one
/// reload after a short quiet period. The watched set follows the snapshot after each successful reload.
/// </summary>
/// <remarks>
/// Two mechanisms, so that a file the gateway writes itself never wakes it: inotify (through FileSystemWatcher) for
/// names only (create, delete, rename, attribute change: a ConfigMap volume's symlink swap, an editor's
/// write-and-rename, <c>touch</c>), and a poll of each watched file's size and modification time for in-place writes.
/// Subscribing to in-place writes of a whole directory would deliver one wake-up per write of every file in it,
/// such as an audit log kept beside the configuration.
/// </remarks>
internal sealed class ConfigurationWatcher : IDisposable
{
    /// <summary>How often watched files are checked for in-place writes.</summary>
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromMilliseconds(250);

    // Names only: FileName/DirectoryName give IN_CREATE, IN_DELETE and IN_MOVED_*; CreationTime gives IN_ATTRIB.
    // LastWrite and Size would add IN_MODIFY for every write to every file in the directory.
    private const NotifyFilters NameFilters = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.CreationTime;

    private readonly SnapshotHolder _holder;
    private readonly TimeSpan _quiet;
    private readonly Lock _lock = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly ITimer _timer;
    private readonly ITimer _poll;
    private IReadOnlyList<string> _files = [];
    private Dictionary<string, (long Length, DateTime Modified)> _seen = new(StringComparer.Ordinal);
    // The stamps taken just before a reload read the files: the watched set it swaps in keeps them, so that a write
    // landing after the reload read a file (and before the new set is watched) still differs at the next poll.
    private Dictionary<string, (long Length, DateTime Modified)>? _beforeReload;
    private bool _disposed;
    private readonly Lock _reloading = new();

    public ConfigurationWatcher(SnapshotHolder holder, TimeSpan quiet, TimeSpan? pollInterval = null, TimeProvider? time = null)
    {
        _holder = holder;
        _quiet = quiet;
        time ??= TimeProvider.System;
        _timer = time.CreateTimer(_ => OnQuiet(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        Watch(holder.Current.WatchedFiles);
        holder.Swapped += s => Watch(s.WatchedFiles);
        var every = pollInterval ?? DefaultPollInterval;
        _poll = time.CreateTimer(_ => Poll(), null, every, every);
    }

    private void Watch(IReadOnlyList<string> files)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            foreach (var w in _watchers)
            {
                w.Dispose();
            }
            _watchers.Clear();
            _files = files;
            var stamps = Stamp(files);
            if (_beforeReload is { } before)
            {
                // Files the reload read keep the stamp from before it read them. A file not stamped then (named for the
                // first time by the new snapshot, or new in a watched folder) may have been written after the reload read
                // it: it is marked unknown, so the next poll reloads once more rather than miss that write.
                foreach (var path in stamps.Keys.ToList())
                {
                    stamps[path] = before.TryGetValue(path, out var stamp) ? stamp : (-3, DateTime.MinValue);
                }
            }
            _seen = stamps;
            // A watched folder (RBAC manifests) reloads on any change inside it.
            var folders = files.Where(Directory.Exists).ToHashSet();
            foreach (var folder in folders)
            {
                var all = new FileSystemWatcher(folder) { IncludeSubdirectories = true, NotifyFilter = NameFilters };
                all.Changed += (_, _) => Poke();
                all.Created += (_, _) => Poke();
                all.Deleted += (_, _) => Poke();
                all.Renamed += (_, _) => Poke();
                all.EnableRaisingEvents = true;
                _watchers.Add(all);
            }
            // One watcher per folder of files (atomic replace via rename, as Kubernetes ConfigMap volumes do, is seen too).
            var plainFiles = files.Where(f => !folders.Contains(f)).ToList();
            foreach (var dir in plainFiles.Select(Path.GetDirectoryName).Where(d => d is not null && Directory.Exists(d)).Distinct())
            {
                var names = plainFiles.Where(f => Path.GetDirectoryName(f) == dir).Select(Path.GetFileName).ToHashSet();
                var watcher = new FileSystemWatcher(dir!) { NotifyFilter = NameFilters, IncludeSubdirectories = false };
                FileSystemEventHandler handler = (_, e) =>
                {
                    if (names.Contains(e.Name) || e.Name?.StartsWith("..", StringComparison.Ordinal) == true)
                    {
                        Poke();
                    }
                };
                watcher.Changed += handler;
                watcher.Created += handler;
                watcher.Deleted += handler;
                watcher.Renamed += (_, e) => { if (names.Contains(e.Name) || names.Contains(e.OldName)) { Poke(); } };
                watcher.EnableRaisingEvents = true;
                _watchers.Add(watcher);
            }
        }
    }

    /// <summary>Size and modification time of every watched file, and of every file below a watched folder.</summary>
    private static Dictionary<string, (long, DateTime)> Stamp(IReadOnlyList<string> files)
    {
        var stamps = new Dictionary<string, (long, DateTime)>(StringComparer.Ordinal);
        foreach (var path in files)
        {
            try
            {
                if (Directory.Exists(path))
                {
                    foreach (var file in new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories))
                    {
                        stamps[file.FullName] = (file.Length, file.LastWriteTimeUtc);
                    }
                }
                else
                {
                    // A missing file is stamped too, so that its appearance counts as a change.
                    var file = new FileInfo(path);
                    stamps[path] = file.Exists ? (file.Length, file.LastWriteTimeUtc) : (-1, DateTime.MinValue);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                stamps[path] = (-2, DateTime.MinValue);
            }
        }
        return stamps;
    }

    private void Poll()
    {
        IReadOnlyList<string> files;
        Dictionary<string, (long, DateTime)> seen;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            files = _files;
            seen = _seen;
        }
        var now = Stamp(files);
        if (Same(now, seen))
        {
            return;
        }
        lock (_lock)
        {
            // A reload that swapped in a new watched set meanwhile has stamped it already.
            if (ReferenceEquals(_seen, seen))
            {
                _seen = now;
            }
        }
        Poke();
    }

    private static bool Same(Dictionary<string, (long, DateTime)> a, Dictionary<string, (long, DateTime)> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }
        foreach (var (path, stamp) in a)
        {
            if (!b.TryGetValue(path, out var other) || other != stamp)
            {
                return false;
            }
        }
        return true;
    }

    private void Poke() => _timer.Change(_quiet, Timeout.InfiniteTimeSpan);

    private void OnQuiet()
    {
        // Held for the whole reload, so that Dispose returns only once a reload already under way has ended: the host then
        // disposes the parts (loggers, metrics, audit sinks) that reload uses.
        lock (_reloading)
        {
            IReadOnlyList<string> files;
            lock (_lock)
            {
                if (_disposed)
                {
                    return;
                }
                files = _files;
            }
            var before = Stamp(files);
            lock (_lock)
            {
                _beforeReload = before;
            }
            try
            {
                _holder.Reload();
            }
            finally
            {
                lock (_lock)
                {
                    _beforeReload = null;
                }
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var w in _watchers)
            {
                w.Dispose();
            }
            _watchers.Clear();
        }
        _poll.Dispose();
        _timer.Dispose();
        lock (_reloading)
        {
            // a reload that began before _disposed was set has ended; none starts after it
        }
    }
}
