using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;

namespace Portcullis.Audit;

/// <summary>
/// One open audit log, shared by every <see cref="AuditLogBackend"/> of the same full path in this process (a reload
/// A → B → A keeps the first A's backend writing a long request's events while the new one writes the rest; two
/// FileStreams on one file would each keep their own position and overwrite each other's lines). All of them write whole
/// lines through this one stream under one lock; rotation happens here, once, with the settings of the newest backend
/// still attached; the file closes when the last backend detaches. Standard output (<c>-</c>) is not shared: each backend
/// gets a writer of its own, as before.
/// </summary>
internal sealed class AuditLogFile
{
    private const string BackupTimeFormat = "yyyy-MM-dd'T'HH-mm-ss.fff";

    private static readonly Lock RegistryGate = new();
    private static readonly Dictionary<string, AuditLogFile> OpenFiles = new(
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);

    private readonly string _path;
    private readonly bool _stdout;
    private readonly Lock _gate = new();
    private readonly List<AuditLogBackend> _backends = []; // in the order they attached; the last one's settings rule
    private readonly ConcurrentQueue<PendingWrite> _queue = new();
    private int _draining;
    private Stream? _stream;
    private bool _seekable;
    private long _size;
    private bool _cleanupPending;
    private bool _closed;

    private AuditLogFile(string path, bool stdout)
    {
        _path = path;
        _stdout = stdout;
    }

    /// <summary>The writer of <paramref name="backend"/>'s path, shared with every other backend of that full path.</summary>
    public static AuditLogFile Attach(AuditLogBackend backend, string path)
    {
        if (path == "-")
        {
            var stdout = new AuditLogFile(path, stdout: true);
            stdout._backends.Add(backend);
            return stdout;
        }
        var full = System.IO.Path.GetFullPath(path);
        lock (RegistryGate)
        {
            if (!OpenFiles.TryGetValue(full, out var file))
            {
                file = new AuditLogFile(full, stdout: false);
                OpenFiles.Add(full, file);
            }
            lock (file._gate)
            {
                file._backends.Add(backend);
                // As lumberjack does when it opens the file: backups already there obey the (new) limits at the next write.
                file._cleanupPending = true;
            }
            return file;
        }
    }

    /// <summary><paramref name="backend"/> writes no more; the last one to detach closes the file.</summary>
    public void Detach(AuditLogBackend backend)
    {
        lock (RegistryGate)
        {
            lock (_gate)
            {
                _backends.Remove(backend);
                if (_backends.Count > 0)
                {
                    return;
                }
                _closed = true;
                CloseLocked();
            }
            if (!_stdout)
            {
                OpenFiles.Remove(_path);
            }
        }
    }

    /// <summary>Writes <paramref name="buffer"/> (whole lines) to the file; completes once it is there.</summary>
    public ValueTask WriteAsync(byte[] buffer)
    {
        // Fast path: no writer active and nothing queued: write on this thread, with no waiter to complete.
        if (_queue.IsEmpty && Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            Exception? failure = null;
            try
            {
                lock (_gate)
                {
                    WriteLocked(buffer, buffer.Length);
                }
            }
            catch (Exception ex)
            {
                failure = ex;
            }
            finally
            {
                Volatile.Write(ref _draining, 0);
            }
            DrainIfIdle(); // lines queued by others while this one was written
            return failure is null ? default : ValueTask.FromException(failure);
        }
        // Group commit: every caller queues its lines and awaits them; whoever finds no writer active becomes the
        // writer and writes everything queued in one write, completing each caller once its lines are in the file.
        // Blocking callers therefore wait asynchronously instead of queueing on a lock, one syscall serves many.
        var pending = new PendingWrite(buffer);
        _queue.Enqueue(pending);
        DrainIfIdle();
        return new ValueTask(pending.Done.Task);
    }

    private sealed class PendingWrite(byte[] buffer)
    {
        public byte[] Buffer { get; } = buffer;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private void DrainIfIdle()
    {
        while (!_queue.IsEmpty && Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            try
            {
                var batch = new List<PendingWrite>();
                while (_queue.TryDequeue(out var item))
                {
                    batch.Add(item);
                }
                if (batch.Count == 0)
                {
                    continue;
                }
                var length = 0;
                foreach (var item in batch)
                {
                    length += item.Buffer.Length;
                }
                var joined = batch.Count == 1 ? batch[0].Buffer : ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    if (batch.Count > 1)
                    {
                        var offset = 0;
                        foreach (var item in batch)
                        {
                            item.Buffer.CopyTo(joined, offset);
                            offset += item.Buffer.Length;
                        }
                    }
                    lock (_gate)
                    {
                        WriteLocked(joined, length);
                    }
                    foreach (var item in batch)
                    {
                        item.Done.TrySetResult();
                    }
                }
                catch (Exception ex)
                {
                    // Every waiter must complete: a caller of a blocking backend fails closed on this.
                    foreach (var item in batch)
                    {
                        item.Done.TrySetException(ex);
                    }
                }
                finally
                {
                    if (batch.Count > 1)
                    {
                        ArrayPool<byte>.Shared.Return(joined);
                    }
                }
            }
            finally
            {
                Volatile.Write(ref _draining, 0);
            }
        }
    }

    private void WriteLocked(byte[] buffer, int length)
    {
        if (_closed)
        {
            // Only a write racing its own backend's shutdown gets here; reopening would leak a stream nobody closes.
            throw new InvalidOperationException($"the audit log {_path} is closed");
        }
        var settings = _backends[^1];
        var options = settings.Options;
        var maxBytes = options.MaxSizeMegabytes > 0 ? options.MaxSizeMegabytes * 1024L * 1024L : 0;
        try
        {
            var stream = _stream ?? OpenLocked();
            if (_cleanupPending && _seekable)
            {
                _cleanupPending = false;
                RemoveOldBackups(settings);
            }
            if (maxBytes > 0 && _seekable && _size + length > maxBytes)
            {
                // Rotate at line boundaries so no file grows past MaxSize (an event larger than MaxSize gets a file of its own).
                var segment = 0;
                var pos = 0;
                while (pos < length)
                {
                    var nl = Array.IndexOf(buffer, (byte)'\n', pos, length - pos);
                    var lineEnd = nl < 0 ? length : nl + 1;
                    var pending = pos - segment;
                    if (_size + pending > 0 && _size + pending + (lineEnd - pos) > maxBytes)
                    {
                        if (pending > 0)
                        {
                            stream.Write(buffer, segment, pending);
                            _size += pending;
                        }
                        stream = Rotate(settings);
                        segment = pos;
                    }
                    pos = lineEnd;
                }
                if (length > segment)
                {
                    stream.Write(buffer, segment, length - segment);
                    _size += length - segment;
                }
            }
            else
            {
                stream.Write(buffer, 0, length);
                _size += length;
            }
            stream.Flush();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            // Reopen on the next write: the disk may have space again, or the file may have been fixed.
            CloseLocked();
            throw;
        }
    }

    private Stream OpenLocked()
    {
        if (_stdout)
        {
            _stream = Console.OpenStandardOutput();
            _seekable = false;
            _size = 0;
            return _stream;
        }
        var directory = System.IO.Path.GetDirectoryName(_path);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        var options = new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.Read | FileShare.Delete,
            BufferSize = 0,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        var stream = new FileStream(_path, options);
        _stream = stream;
        _seekable = stream.CanSeek;
        _size = _seekable ? stream.Length : 0;
        return stream;
    }

    private Stream Rotate(AuditLogBackend settings)
    {
        CloseLocked();
        var (directory, prefix, ext) = Split(_path);
        var now = settings.Clock.GetUtcNow().UtcDateTime;
        string backup;
        do
        {
            backup = System.IO.Path.Combine(directory, prefix + "-" + now.ToString(BackupTimeFormat, CultureInfo.InvariantCulture) + ext);
            now = now.AddMilliseconds(1);
        }
        while (File.Exists(backup));
        File.Move(_path, backup);
        var stream = OpenLocked();
        RemoveOldBackups(settings);
        return stream;
    }

    private void RemoveOldBackups(AuditLogBackend settings)
    {
        var options = settings.Options;
        if (options.MaxBackups <= 0 && options.MaxAgeDays <= 0)
        {
            return;
        }
        var (directory, prefix, ext) = Split(_path);
        var backups = new List<(DateTime Time, string Path)>();
        foreach (var file in Directory.EnumerateFiles(directory, prefix + "-*" + ext))
        {
            var name = System.IO.Path.GetFileName(file);
            var stamp = name.AsSpan(prefix.Length + 1, name.Length - prefix.Length - 1 - ext.Length);
            if (DateTime.TryParseExact(stamp, BackupTimeFormat, CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var time))
            {
                backups.Add((time, file));
            }
        }
        backups.Sort((a, b) => b.Time.CompareTo(a.Time));
        var cutoff = options.MaxAgeDays > 0 ? settings.Clock.GetUtcNow().UtcDateTime.AddDays(-options.MaxAgeDays) : DateTime.MinValue;
        for (var i = 0; i < backups.Count; i++)
        {
            if ((options.MaxBackups > 0 && i >= options.MaxBackups) || backups[i].Time < cutoff)
            {
                try
                {
                    File.Delete(backups[i].Path);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    settings.ReportFileError($"could not remove old audit log {backups[i].Path}: {ex.Message}", ex);
                }
            }
        }
    }

    private static (string Directory, string Prefix, string Ext) Split(string full)
    {
        var directory = System.IO.Path.GetDirectoryName(full) ?? ".";
        var name = System.IO.Path.GetFileName(full);
        var ext = System.IO.Path.GetExtension(name);
        return (directory, name[..^ext.Length], ext);
    }

    private void CloseLocked()
    {
        var stream = _stream;
        _stream = null;
        if (stream is null)
        {
            return;
        }
        try
        {
            if (!_stdout)
            {
                stream.Dispose();
            }
            else
            {
                stream.Flush();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            // The write that failed is already reported; closing a broken file adds nothing.
        }
    }
}
