namespace Portcullis.Gateway.Hosting;

/// <summary>
/// Watches the configuration file and every file the current snapshot names; a burst of changes is folded into one
/// reload after a short quiet period. The watched set follows the snapshot after each successful reload.
/// </summary>
internal sealed class ConfigurationWatcher : IDisposable
{
    private readonly SnapshotHolder _holder;
    private readonly TimeSpan _quiet;
    private readonly Lock _lock = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly Timer _timer;
    private bool _disposed;

    public ConfigurationWatcher(SnapshotHolder holder, TimeSpan quiet)
    {
        _holder = holder;
        _quiet = quiet;
        _timer = new Timer(_ => OnQuiet(), null, Timeout.Infinite, Timeout.Infinite);
        Watch(holder.Current.WatchedFiles);
        holder.Swapped += s => Watch(s.WatchedFiles);
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
            // A watched folder (RBAC manifests) reloads on any change inside it.
            var folders = files.Where(Directory.Exists).ToHashSet();
            foreach (var folder in folders)
            {
                var all = new FileSystemWatcher(folder) { IncludeSubdirectories = true, NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size };
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
                var watcher = new FileSystemWatcher(dir!)
                {
                    NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
                    IncludeSubdirectories = false,
                };
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

    private void Poke() => _timer.Change(_quiet, Timeout.InfiniteTimeSpan);

    private void OnQuiet()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
        }
        _holder.Reload();
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
        _timer.Dispose();
    }
}
