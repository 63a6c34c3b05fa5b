using System.Buffers;
using System.Globalization;

namespace Portcullis.Audit;

/// <summary>Settings of the log backend (<c>audit.log</c>, kube-apiserver's <c>--audit-log-*</c> flags).</summary>
public sealed record AuditLogOptions
{
    /// <summary>The file to write, or <c>-</c> for standard output.</summary>
    public required string Path { get; init; }

    /// <summary>Days to keep rotated files, judged by the time in their names; 0 keeps them regardless of age.</summary>
    public int MaxAgeDays { get; init; }

    /// <summary>Rotated files to keep; 0 keeps all.</summary>
    public int MaxBackups { get; init; }

    /// <summary>Size in megabytes (2^20 bytes) at which the file is rotated; 0 never rotates (kube-apiserver 1.36).</summary>
    public int MaxSizeMegabytes { get; init; }

    public AuditMode Mode { get; init; } = AuditMode.Blocking;

    public AuditBatchOptions Batch { get; init; } = AuditBatchOptions.LogDefaults;
}

/// <summary>
/// Writes one JSON Event per line to a file (created 0600) or standard output, rotating as kube-apiserver's lumberjack
/// logger does: when the next event would take the file past MaxSize it is renamed to
/// <c>&lt;name&gt;-&lt;UTC yyyy-MM-ddTHH-mm-ss.fff&gt;&lt;ext&gt;</c> and a new file started; backups beyond MaxBackups or older
/// than MaxAge days are deleted.
/// </summary>
public sealed class AuditLogBackend : AuditBackendBase
{
    public const string PluginName = "log";
    private const string BackupTimeFormat = "yyyy-MM-dd'T'HH-mm-ss.fff";

    private readonly AuditLogOptions _options;
    private readonly Lock _gate = new();
    private readonly bool _stdout;
    private readonly long _maxBytes;
    private Stream? _stream;
    private bool _seekable;
    private long _size;
    private bool _cleanedAtStart;

    public AuditLogBackend(AuditLogOptions options, AuditMetrics metrics, Action<AuditBackendError>? onError = null,
        TimeProvider? timeProvider = null)
        : base(PluginName, (options ?? throw new ArgumentNullException(nameof(options))).Mode, options.Batch, metrics, onError, timeProvider)
    {
        if (string.IsNullOrEmpty(options.Path))
        {
            throw new ArgumentException("the audit log path is empty", nameof(options));
        }
        _options = options;
        _stdout = options.Path == "-";
        _maxBytes = options.MaxSizeMegabytes > 0 ? options.MaxSizeMegabytes * 1024L * 1024L : 0;
    }

    /// <summary>The file being written (<c>-</c> for standard output).</summary>
    public string Path => _options.Path;

    protected override ValueTask WriteBatchAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken)
    {
        // Serialize outside any lock so concurrent writers format in parallel. One event (every blocking write) is
        // written from its own line array; a batch is joined into one buffer for one write.
        byte[] buffer;
        if (events.Count == 1)
        {
            buffer = events[0].LineArray;
        }
        else
        {
            var total = 0;
            for (var i = 0; i < events.Count; i++)
            {
                total += events[i].LineArray.Length;
            }
            buffer = new byte[total];
            var at = 0;
            for (var i = 0; i < events.Count; i++)
            {
                var line = events[i].LineArray;
                line.CopyTo(buffer, at);
                at += line.Length;
            }
        }
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

    private readonly System.Collections.Concurrent.ConcurrentQueue<PendingWrite> _queue = new();
    private int _draining;

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
        try
        {
            var stream = _stream ?? Open();
            if (_maxBytes > 0 && _seekable && _size + length > _maxBytes)
            {
                // Rotate at line boundaries so no file grows past MaxSize (an event larger than MaxSize gets a file of its own).
                var segment = 0;
                var pos = 0;
                while (pos < length)
                {
                    var nl = Array.IndexOf(buffer, (byte)'\n', pos, length - pos);
                    var lineEnd = nl < 0 ? length : nl + 1;
                    var pending = pos - segment;
                    if (_size + pending > 0 && _size + pending + (lineEnd - pos) > _maxBytes)
                    {
                        if (pending > 0)
                        {
                            stream.Write(buffer, segment, pending);
                            _size += pending;
                        }
                        stream = Rotate();
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

    private Stream Open()
    {
        if (_stdout)
        {
            _stream = Console.OpenStandardOutput();
            _seekable = false;
            _size = 0;
            return _stream;
        }
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_options.Path));
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
        var stream = new FileStream(_options.Path, options);
        _stream = stream;
        _seekable = stream.CanSeek;
        _size = _seekable ? stream.Length : 0;
        if (!_cleanedAtStart && _seekable)
        {
            // As lumberjack does when it first opens the file: backups left by an earlier run obey the limits too.
            _cleanedAtStart = true;
            var (backupDirectory, prefix, ext) = Split(System.IO.Path.GetFullPath(_options.Path));
            RemoveOldBackups(backupDirectory, prefix, ext);
        }
        return stream;
    }

    private Stream Rotate()
    {
        CloseLocked();
        var full = System.IO.Path.GetFullPath(_options.Path);
        var (directory, prefix, ext) = Split(full);
        var now = Time.GetUtcNow().UtcDateTime;
        string backup;
        do
        {
            backup = System.IO.Path.Combine(directory, prefix + "-" + now.ToString(BackupTimeFormat, CultureInfo.InvariantCulture) + ext);
            now = now.AddMilliseconds(1);
        }
        while (File.Exists(backup));
        File.Move(full, backup);
        var stream = Open();
        RemoveOldBackups(directory, prefix, ext);
        return stream;
    }

    private void RemoveOldBackups(string directory, string prefix, string ext)
    {
        if (_options.MaxBackups <= 0 && _options.MaxAgeDays <= 0)
        {
            return;
        }
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
        var cutoff = _options.MaxAgeDays > 0 ? Time.GetUtcNow().UtcDateTime.AddDays(-_options.MaxAgeDays) : DateTime.MinValue;
        for (var i = 0; i < backups.Count; i++)
        {
            if ((_options.MaxBackups > 0 && i >= _options.MaxBackups) || backups[i].Time < cutoff)
            {
                try
                {
                    File.Delete(backups[i].Path);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    ReportError(0, $"could not remove old audit log {backups[i].Path}: {ex.Message}", ex);
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

    protected override ValueTask CloseAsync()
    {
        lock (_gate)
        {
            CloseLocked();
        }
        return default;
    }
}
