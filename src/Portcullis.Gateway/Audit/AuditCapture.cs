using Portcullis.Audit;

namespace Portcullis.Gateway.Audit;

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
