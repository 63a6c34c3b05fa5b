using Microsoft.AspNetCore.Http;
using Portcullis.Admission.Flowcontrol;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Admission;

/// <summary>
/// L5, API Priority and Fairness, where kube-apiserver has it: after authentication and impersonation (it classifies
/// the effective user), before authorization (a request later denied still took a seat). The request's flow schema and
/// priority level come from the snapshot it began on; their UIDs are sent on every response it gets
/// (<c>X-Kubernetes-PF-FlowSchema-UID</c>, <c>X-Kubernetes-PF-PriorityLevel-UID</c>, replacing any the upstream sent).
/// An Exempt level never waits. A Limited level runs the request at once, queues it (fair queuing, up to kube-apiserver's
/// wait limit: a quarter of the request's deadline, <c>?timeout=</c> or <c>upstream.requestTimeout</c>, at most a
/// minute) or refuses it with kube-apiserver's 429. The request takes the seats the list work estimator gives it (one
/// without object counts). A watch holds its seats only until its response starts; other long-running requests (exec,
/// attach, port-forward, proxy, logs) bypass APF.
/// </summary>
internal sealed class PriorityAndFairnessMiddleware(RequestDelegate next, Refusals refusals, GatewayMetrics metrics)
{
    public const string FlowSchemaUidHeader = "X-Kubernetes-PF-FlowSchema-UID";
    public const string PriorityLevelUidHeader = "X-Kubernetes-PF-PriorityLevel-UID";

    private static readonly Func<object, Task> SetHeaders = static state =>
    {
        var seat = (Seat)state;
        var headers = seat.Context.Response.Headers;
        headers[FlowSchemaUidHeader] = seat.Classification.FlowSchema.Uid;
        headers[PriorityLevelUidHeader] = seat.Classification.PriorityLevel.Uid;
        if (seat.IsWatch)
        {
            seat.Release(); // a watch holds its seat only while it starts
        }
        return Task.CompletedTask;
    };

    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var system = feature.Snapshot.Flowcontrol;
        var info = feature.RequestInfo;
        if (system is null || FlowcontrolSystem.Bypasses(info))
        {
            return next(context);
        }
        var classification = system.Classify(context.GetAuthenticatedRequest().EffectiveUser, info);
        var seat = new Seat(context, classification, metrics, info.Verb == "watch", feature.Snapshot.Time);
        context.Response.OnStarting(SetHeaders, seat);
        return RunAsync(context, feature, seat);
    }

    private async Task RunAsync(HttpContext context, GatewayRequestFeature feature, Seat seat)
    {
        var schema = seat.Classification.FlowSchema.Name;
        var level = seat.Classification.PriorityLevel;
        if (level.Queues is { } queues)
        {
            var time = feature.Snapshot.Time;
            var arrived = time.GetTimestamp();
            // No object counts yet (see docs/traffic.md): kube-apiserver's rule for a count it does not have, one seat.
            var seats = WorkEstimator.Seats(feature.RequestInfo, context.Request.QueryString.Value ?? "", level.MaxSeats, counts: null);
            var request = queues.TryStart(seat.Classification.FlowHash, seats, out var reason);
            if (request is not null && !request.IsExecuting)
            {
                metrics.Flowcontrol.AddQueued(schema, level.Name, 1, seats);
                if (request.QueueIndex >= 0)
                {
                    // the queue's length just after this request joined it, taken by the queue set under its lock
                    metrics.Flowcontrol.Enqueued(schema, level.Name, request.QueueLengthAfterEnqueue);
                }
                try
                {
                    var limit = RequestWaitLimit.For(feature.Snapshot.Config.Upstream!.RequestTimeout, feature.RequestInfo, context.Request.QueryString.Value ?? "");
                    if (!await queues.WaitAsync(request, limit, context.RequestAborted))
                    {
                        request = null;
                        reason = ApfRejectReasons.TimeOut;
                    }
                }
                finally
                {
                    metrics.Flowcontrol.AddQueued(schema, level.Name, -1, seats);
                }
            }
            metrics.Flowcontrol.Waited(schema, level.Name, request is not null, time.GetElapsedTime(arrived).TotalSeconds);
            if (request is null)
            {
                metrics.Flowcontrol.Reject(schema, level.Name, reason!);
                var retryAfter = level.RetryAfter.RecordDrop();
                await refusals.RefuseAsync(context, feature, Refusal.TooManyRequests(RefusalLayers.Apf, retryAfter,
                    $"{reason}: flow schema {schema}, priority level {level.Name}"));
                return;
            }
            seat.Hold(queues, request);
        }
        else
        {
            seat.HoldExempt(level.ExemptSeats);
        }
        metrics.Flowcontrol.Dispatch(schema, level.Name);
        try
        {
            await next(context);
        }
        finally
        {
            seat.Release();
        }
    }

    /// <summary>The request's classification and, once dispatched, its seat: released once, at the end or when a watch starts.</summary>
    private sealed class Seat(HttpContext context, FlowClassification classification, GatewayMetrics metrics, bool isWatch, TimeProvider time)
    {
        private QueueSet? _queues;
        private long _started;
        private ApfRequest? _request;
        private ExemptSeats? _exempt;
        private int _seats = 1;
        private int _held;

        public HttpContext Context { get; } = context;
        public FlowClassification Classification { get; } = classification;
        public bool IsWatch { get; } = isWatch;

        public void Hold(QueueSet queues, ApfRequest request)
        {
            _queues = queues;
            _request = request;
            _seats = request.Seats;
            Held();
        }

        public void HoldExempt(ExemptSeats? exempt)
        {
            _exempt = exempt;
            exempt?.Add(1);
            Held();
        }

        private void Held()
        {
            _started = time.GetTimestamp();
            Volatile.Write(ref _held, 1);
            metrics.Flowcontrol.AddExecuting(Classification.FlowSchema.Name, Classification.PriorityLevel.Name, 1, _seats);
        }

        public void Release()
        {
            if (Interlocked.Exchange(ref _held, 0) != 1)
            {
                return;
            }
            if (_request is not null)
            {
                _queues!.Finish(_request);
            }
            _exempt?.Add(-1);
            metrics.Flowcontrol.AddExecuting(Classification.FlowSchema.Name, Classification.PriorityLevel.Name, -1, _seats);
            metrics.Flowcontrol.Executed(Classification.FlowSchema.Name, Classification.PriorityLevel.Name, IsWatch, time.GetElapsedTime(_started).TotalSeconds);
        }
    }
}
