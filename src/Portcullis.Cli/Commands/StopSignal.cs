using System.Runtime.InteropServices;

namespace Portcullis.Cli;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM both mean "stop cleanly and exit 0": while registered, either signal cancels
/// <see cref="Token"/> instead of killing the process, so a command can drain and flush first.
/// </summary>
internal sealed class StopSignal : IDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly PosixSignalRegistration _sigint;
    private readonly PosixSignalRegistration _sigterm;

    private StopSignal(CancellationToken cancellationToken)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    public static StopSignal Register(CancellationToken cancellationToken) => new(cancellationToken);

    public CancellationToken Token => _stop.Token;

    public bool IsRequested => _stop.IsCancellationRequested;

    /// <summary>Completes (without throwing) when a signal arrives or the command's token is cancelled.</summary>
    public Task WaitAsync() => Task.Delay(Timeout.Infinite, _stop.Token).ContinueWith(static _ => { }, TaskScheduler.Default);

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        _stop.Cancel();
    }

    public void Dispose()
    {
        _sigint.Dispose();
        _sigterm.Dispose();
        _stop.Dispose();
    }
}
