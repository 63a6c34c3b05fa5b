using Microsoft.AspNetCore.Http;
using Portcullis.Audit;
using Portcullis.Gateway.Metrics;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Audit;

/// <summary>
/// L6, right after authentication as in kube-apiserver: starts the audit record for the authenticated (pre-impersonation)
/// user, writes RequestReceived (a blocking backend that cannot store it fails the request closed with 500), captures
/// response bodies at RequestResponse level up to the audit object limit (<c>limits.maxRequestBodyBytes</c>), and writes
/// ResponseStarted for long-running requests when their response begins. The request body is handed to the record by
/// the request body stage (<c>Http/RequestBodyMiddleware</c>), which reads it whole before it is forwarded. Streams are never
/// buffered for audit.
/// </summary>
internal sealed class AuditStartMiddleware(RequestDelegate next, AuditSink sink, GatewayMetrics metrics)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (!sink.IsEnabled)
        {
            // Audit off (no policy or no backend): nothing to compute for a record that would be discarded.
            await next(context);
            return;
        }
        var feature = context.GetGatewayFeature();
        var audit = sink.BeginRequest(feature.AuditId, AuditMiddleware.RequestUri(context), feature.RequestInfo.Verb, feature.User,
            AuditMiddleware.SourceIps(feature), context.Request.Headers.UserAgent.ToString(), feature.RequestInfo, feature.ReceivedAt.UtcDateTime,
            feature.Snapshot.Config.Limits.MaxRequestBodyBytes);
        if (!audit.IsEnabled)
        {
            await next(context);
            return;
        }
        feature.Audit = audit;
        foreach (var (key, value) in feature.Annotations)
        {
            audit.AddAnnotation(key, value);
        }
        var received = await audit.EmitAsync(AuditStage.RequestReceived, cancellationToken: context.RequestAborted);
        if (received.RejectRequest)
        {
            feature.RejectedBy = "audit";
            metrics.RequestsRejected.WithLabels("audit", "500").Inc();
            await StatusResponses.InternalErrorTextAsync(context, AuditWriteResult.FailedToStoreMessage);
            return;
        }

        if (feature.RequestInfo.IsLongRunning)
        {
            context.Response.OnStarting(static state =>
            {
                var a = (AuditRequest)state;
                return a.EmitAsync(AuditStage.ResponseStarted).AsTask();
            }, audit);
        }
        else if (audit.WantsResponseObject)
        {
            var capture = new AuditCapture(context.Response.Body, audit.MaxObjectBytes);
            context.Features.Set(capture);
            context.Response.Body = capture;
        }
        await next(context);
    }
}

/// <summary>
/// Copies up to <paramref name="limit"/> bytes of a (non-streaming) response body as it is written through; a longer
/// body is not kept and the event says it was truncated.
/// </summary>
internal sealed class AuditCapture(Stream inner, int limit) : Stream
{
    private readonly MemoryStream _copy = new();
    private bool _overflow;

    public void Apply(AuditRequest audit, int code)
    {
        var body = _copy.ToArray();
        if (_overflow)
        {
            audit.SetResponseStatus(code);
            audit.SetResponseObjectTruncated();
            return;
        }
        audit.SetResponseStatusFromBody(code, body);
        if (body.Length > 0)
        {
            audit.SetResponseObject(body);
        }
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count)
    {
        Keep(buffer.AsSpan(offset, count));
        inner.Write(buffer, offset, count);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Keep(buffer.Span);
        return inner.WriteAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private void Keep(ReadOnlySpan<byte> data)
    {
        if (_overflow)
        {
            return;
        }
        if (_copy.Length + data.Length > limit)
        {
            _overflow = true;
            _copy.SetLength(0);
            _copy.Capacity = 0; // nothing of it will be recorded: give the memory back now
            return;
        }
        _copy.Write(data);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _copy.Dispose();
        }
        base.Dispose(disposing);
    }
}
