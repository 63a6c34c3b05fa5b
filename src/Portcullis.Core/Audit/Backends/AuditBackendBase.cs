using System.Threading.Channels;

namespace Portcullis.Audit;

/// <summary>Buffering and batching settings of a backend in batch mode (<c>--audit-{log,webhook}-batch-*</c>).</summary>
public sealed record AuditBatchOptions
{
    /// <summary>Events held before new ones are dropped (kube-apiserver default 10000).</summary>
    public int BufferSize { get; init; } = 10_000;

    /// <summary>Most events stored in one write or one webhook request.</summary>
    public int MaxBatchSize { get; init; } = 400;

    /// <summary>
    /// How long a partial batch waits for more events before it is sent. Zero sends whatever is buffered at once
    /// (the log backend's choice: waiting adds latency and saves nothing for a file).
    /// </summary>
    public TimeSpan MaxBatchWait { get; init; } = TimeSpan.FromSeconds(30);

    public bool ThrottleEnabled { get; init; }

    /// <summary>Batches per second when throttled.</summary>
    public double ThrottleQps { get; init; } = 10;

    public int ThrottleBurst { get; init; } = 15;

    /// <summary>The log backend's defaults: buffer 10000, up to 1000 events a write, no wait, no throttle.</summary>
    public static AuditBatchOptions LogDefaults { get; } = new() { MaxBatchSize = 1000, MaxBatchWait = TimeSpan.Zero };

    /// <summary>The webhook backend's defaults as kube-apiserver's: buffer 10000, 400 a batch, 30 s wait, throttle 10 qps burst 15.</summary>
    public static AuditBatchOptions WebhookDefaults { get; } = new() { ThrottleEnabled = true };
}

/// <summary>
/// The three modes over a destination that can store a batch: blocking (caller waits, failures thrown), blocking-strict
/// (the same; the sink turns a RequestReceived failure into a rejected request) and batch (bounded channel drained by
/// one background loop; graceful shutdown drains it completely).
/// </summary>
public abstract class AuditBackendBase : IAuditBackend, IAsyncDisposable
{
    private readonly AuditMetrics _metrics;
    private readonly Action<AuditBackendError>? _onError;
    private readonly AuditBatchOptions _batch;
    private readonly Channel<AuditEvent>? _channel;
    private readonly Task? _loop;
    private readonly CancellationTokenSource _abort = new();
    private readonly Lock _waitersGate = new();
    private readonly List<(long Target, TaskCompletionSource Done)> _waiters = [];
    private CancellationTokenSource? _waitCts;
    private long _accepted;
    private long _finished;
    private long _droppedSinceReport;
    private int _shutdown;

    protected AuditBackendBase(string name, AuditMode mode, AuditBatchOptions? batch, AuditMetrics metrics,
        Action<AuditBackendError>? onError, TimeProvider? timeProvider)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        Name = name;
        Mode = mode;
        _metrics = metrics;
        _onError = onError;
        _batch = batch ?? AuditBatchOptions.LogDefaults;
        Time = timeProvider ?? TimeProvider.System;
        if (mode == AuditMode.Batch)
        {
            if (_batch.BufferSize < 1 || _batch.MaxBatchSize < 1)
            {
                throw new ArgumentException("batch buffer size and max batch size must be at least 1", nameof(batch));
            }
            _channel = Channel.CreateBounded<AuditEvent>(new BoundedChannelOptions(_batch.BufferSize)
            {
                SingleReader = true,
                FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails instead of waiting: the event is dropped.
            });
            _loop = Task.Run(RunBatchLoopAsync);
        }
    }

    public string Name { get; }

    public AuditMode Mode { get; }

    protected TimeProvider Time { get; }

    /// <summary>Cancelled when a shutdown gives up waiting; long operations such as retries should stop.</summary>
    protected CancellationToken Aborted => _abort.Token;

    /// <summary>Stores one batch at the destination, or throws.</summary>
    protected abstract ValueTask WriteBatchAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken);

    /// <summary>Releases the destination after the last batch.</summary>
    protected virtual ValueTask CloseAsync() => default;

    public ValueTask ProcessAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0)
        {
            return default;
        }
        if (_channel is null)
        {
            return ProcessBlockingAsync(events, cancellationToken);
        }
        foreach (var e in events)
        {
            // Serialize on the caller's thread: requests run in parallel, the writer loop is one thread.
            _ = e.Json;
            // Count before enqueueing so a concurrent FlushAsync never waits for less than what is in the channel;
            // a refused event counts as finished at once.
            Interlocked.Increment(ref _accepted);
            if (Volatile.Read(ref _shutdown) != 0 || !_channel.Writer.TryWrite(e))
            {
                _metrics.AddDropped(Name, 1);
                Finished(1);
                var dropped = Interlocked.Increment(ref _droppedSinceReport);
                if (dropped == 1 || dropped % 1000 == 0)
                {
                    // Report the first drop and every thousandth after it, not each one: a full buffer under load
                    // would otherwise flood the gateway's log. The metric counts every event.
                    ReportError((int)Math.Min(dropped, int.MaxValue),
                        $"{dropped} event(s) dropped so far: " + (Volatile.Read(ref _shutdown) != 0 ? "backend shut down" : "audit buffer full"), null);
                }
                continue;
            }
        }
        return default;
    }

    private async ValueTask ProcessBlockingAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _shutdown) != 0)
        {
            _metrics.AddErrors(Name, events.Count);
            throw new AuditBackendException(Name, $"audit {Name} backend is shut down", null);
        }
        try
        {
            await WriteBatchAsync(events, cancellationToken);
        }
        catch (Exception ex)
        {
            _metrics.AddErrors(Name, events.Count);
            var message = $"audit {Name} backend failed to store {events.Count} event(s): {ex.Message}";
            ReportError(events.Count, message, ex);
            throw new AuditBackendException(Name, message, ex);
        }
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_channel is null)
        {
            return;
        }
        var target = Interlocked.Read(ref _accepted);
        TaskCompletionSource done;
        lock (_waitersGate)
        {
            if (Interlocked.Read(ref _finished) >= target)
            {
                return;
            }
            done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((target, done));
        }
        CutWait();
        await done.Task.WaitAsync(cancellationToken);
    }

    public async ValueTask ShutdownAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _shutdown, 1) != 0)
        {
            if (_loop is not null)
            {
                await _loop.WaitAsync(cancellationToken);
            }
            return;
        }
        if (_channel is not null && _loop is not null)
        {
            _channel.Writer.TryComplete();
            CutWait();
            try
            {
                await _loop.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Gave up waiting: stop retries, count what is left as dropped, and still close.
                await _abort.CancelAsync();
                await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                await CloseAsync();
                throw;
            }
        }
        await CloseAsync();
    }

    /// <summary>Shuts down (draining every accepted event) and releases resources.</summary>
    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync();
        _abort.Dispose();
        GC.SuppressFinalize(this);
    }

    private void CutWait()
    {
        try
        {
            Volatile.Read(ref _waitCts)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The loop finished that wait already.
        }
    }

    private async Task RunBatchLoopAsync()
    {
        var reader = _channel!.Reader;
        var batch = new List<AuditEvent>(_batch.MaxBatchSize);
        var tokens = (double)Math.Max(1, _batch.ThrottleBurst);
        var lastRefill = Time.GetTimestamp();
        while (await reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < _batch.MaxBatchSize && reader.TryRead(out var e))
            {
                batch.Add(e);
            }
            if (batch.Count < _batch.MaxBatchSize && _batch.MaxBatchWait > TimeSpan.Zero && !FlushPending())
            {
                using var cts = new CancellationTokenSource(_batch.MaxBatchWait, Time);
                Volatile.Write(ref _waitCts, cts);
                try
                {
                    while (batch.Count < _batch.MaxBatchSize && !FlushPending())
                    {
                        if (!await reader.WaitToReadAsync(cts.Token))
                        {
                            break;
                        }
                        while (batch.Count < _batch.MaxBatchSize && reader.TryRead(out var e))
                        {
                            batch.Add(e);
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                    // Max wait reached, or a flush/shutdown asked for the partial batch now.
                }
                finally
                {
                    Volatile.Write(ref _waitCts, null);
                }
            }
            if (_batch.ThrottleEnabled && _batch.ThrottleQps > 0)
            {
                var now = Time.GetTimestamp();
                tokens = Math.Min(_batch.ThrottleBurst, tokens + Time.GetElapsedTime(lastRefill, now).TotalSeconds * _batch.ThrottleQps);
                lastRefill = now;
                if (tokens < 1 && Volatile.Read(ref _shutdown) == 0)
                {
                    var wait = TimeSpan.FromSeconds((1 - tokens) / _batch.ThrottleQps);
                    try
                    {
                        await Task.Delay(wait, Time, _abort.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        // Aborted shutdown: fall through and try to write anyway.
                    }
                    tokens = 1;
                    lastRefill = Time.GetTimestamp();
                }
                tokens -= 1;
            }
            if (_abort.IsCancellationRequested)
            {
                _metrics.AddDropped(Name, batch.Count);
                ReportError(batch.Count, "events dropped: shutdown timed out", null);
            }
            else
            {
                try
                {
                    await WriteBatchAsync(batch, _abort.Token);
                }
                catch (Exception ex)
                {
                    _metrics.AddErrors(Name, batch.Count);
                    ReportError(batch.Count, $"audit {Name} backend failed to store a batch of {batch.Count} event(s): {ex.Message}", ex);
                }
            }
            Finished(batch.Count);
        }
    }

    private bool FlushPending()
    {
        if (Volatile.Read(ref _shutdown) != 0)
        {
            return true;
        }
        lock (_waitersGate)
        {
            return _waiters.Count > 0;
        }
    }

    private void Finished(int count)
    {
        var finished = Interlocked.Add(ref _finished, count);
        lock (_waitersGate)
        {
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Target <= finished)
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>Reports a failure to the gateway's logger; the message must never contain credentials.</summary>
    protected void ReportError(int events, string message, Exception? exception)
    {
        try
        {
            _onError?.Invoke(new AuditBackendError(Name, events, message, exception));
        }
        catch (Exception)
        {
            // A failing logger must not take the audit path down with it.
        }
    }
}
