using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Gateway.Admin;

/// <summary>Probes the upstream in the background so /readyz can answer without a request of its own.</summary>
internal sealed class UpstreamProbe(SnapshotHolder snapshots, GatewayMetrics metrics, ILogger logger, TimeSpan interval, TimeProvider time) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private volatile string? _lastError = "not probed yet";
    private readonly TaskCompletionSource _firstProbe = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the first probe has an answer (tests and startup logs wait on it).</summary>
    public Task FirstProbe => _firstProbe.Task;

    /// <summary>Null when the last probe got an HTTP answer; else why not.</summary>
    public string? LastError => _lastError;

    public void Start() => _loop = Task.Run(LoopAsync);

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(interval, time);
        do
        {
            await ProbeOnceAsync(_stop.Token);
            _firstProbe.TrySetResult();
        }
        while (await WaitAsync(timer));
    }

    private async Task<bool> WaitAsync(PeriodicTimer timer)
    {
        try
        {
            return await timer.WaitForNextTickAsync(_stop.Token);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    internal async Task ProbeOnceAsync(CancellationToken cancellationToken)
    {
        var snapshot = snapshots.Current;
        if (!snapshot.HasUpstream)
        {
            _lastError = null; // portcullis webhook: nothing to probe, ready when it serves
            return;
        }
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, snapshot.UpstreamClient.Destination + "/healthz");
            if (snapshot.Upstream.Token is { Length: > 0 } token)
            {
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            }
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
            // The probe runs as the gateway's own account: it registers an empty identity block, as every request must.
            using var registration = snapshot.UpstreamClient.Identities.Register(request.Headers, []);
            using var response = await snapshot.UpstreamClient.Pooled.SendAsync(request, timeout.Token);
            _lastError = null;
            metrics.UpstreamUp.Record(1);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            var reason = ex.GetBaseException().Message;
            if (_lastError != reason)
            {
                Log.UpstreamUnreachable(logger, snapshot.Upstream.Server.ToString(), reason);
            }
            _lastError = reason;
            metrics.UpstreamUp.Record(0);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            await _loop;
        }
        _stop.Dispose();
    }
}
