using System.Buffers.Text;
using System.Text;

namespace Portcullis.Gateway.Upstream;

/// <summary>
/// The last check before the upstream wire: a filter on each upstream HTTP/1.1 connection that holds every request head
/// until it is complete, checks it line by line, and replaces the one marker line with the identity block registered
/// for it in <see cref="IdentityBlocks"/>. A head is written only if its request line and every field line are valid
/// RFC 9110 syntax (token names, field values without CR, LF, NUL or other controls, no obs-fold), it carries exactly one
/// marker whose nonce belongs to a request in flight, and its framing is unambiguous (one Content-Length of digits, or
/// <c>Transfer-Encoding: chunked</c>, never both). Anything else fails the write: the request is not forwarded and the
/// connection is dropped, so a request the gateway did not build can never reach kube-apiserver, with or without the
/// gateway's credentials. Bodies pass through by their framing; chunk-size lines are checked too.
/// <para>
/// A connection created for an upgrade request (exec, attach, port-forward, WebSocket) becomes a tunnel after its head;
/// such a connection belongs to one request only and is discarded with it (see <see cref="UpstreamClient"/>), so no
/// later request can be written into a tunnel that was never opened. On a pooled connection an upgrade head is refused.
/// </para>
/// </summary>
internal sealed class UpstreamHeaderFilter(Stream inner, IdentityBlocks blocks, bool forUpgrade) : Stream
{
    private const int MaxHead = 256 * 1024;

    private enum State { Headers, Body, ChunkSize, ChunkData, ChunkDataEnd, Trailers, Tunnel, Broken }

    private State _state = State.Headers;
    private readonly MemoryStream _pending = new();
    private long _remaining;
    private int _requests;

    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            switch (_state)
            {
                case State.Broken:
                    throw new UpstreamHeaderException("the connection was closed after a refused request head");
                case State.Tunnel:
                    await inner.WriteAsync(buffer, cancellationToken);
                    return;
                case State.Body:
                case State.ChunkData:
                case State.ChunkDataEnd:
                {
                    var n = (int)Math.Min(_remaining, buffer.Length);
                    if (_state == State.ChunkDataEnd && !buffer.Span[..n].SequenceEqual("\r\n"u8[(2 - (int)_remaining)..][..n]))
                    {
                        Fail("a chunk does not end with CRLF");
                    }
                    await inner.WriteAsync(buffer[..n], cancellationToken);
                    buffer = buffer[n..];
                    _remaining -= n;
                    if (_remaining == 0)
                    {
                        (_state, _remaining) = _state switch
                        {
                            State.ChunkData => (State.ChunkDataEnd, 2L),
                            State.ChunkDataEnd => (State.ChunkSize, 0L),
                            _ => (State.Headers, 0L),
                        };
                    }
                    break;
                }
                default:
                {
                    // Heads, chunk-size lines and the trailer section are held whole until their terminator.
                    var terminator = _state is State.ChunkSize or State.Trailers ? "\r\n"u8 : "\r\n\r\n"u8;
                    var consumed = Accumulate(buffer.Span, terminator);
                    buffer = buffer[consumed..];
                    if (!EndsWith(_pending, terminator))
                    {
                        if (_pending.Length > MaxHead)
                        {
                            Fail("the request head is larger than " + MaxHead + " bytes");
                        }
                        break; // need more bytes
                    }
                    var block = _pending.GetBuffer().AsMemory(0, (int)_pending.Length);
                    var output = Complete(block.Span);
                    _pending.SetLength(0);
                    if (output.Length > 0)
                    {
                        await inner.WriteAsync(output, cancellationToken);
                    }
                    break;
                }
            }
        }
    }

    // Copies bytes into _pending up to and including the first terminator; returns how many were taken.
    private int Accumulate(ReadOnlySpan<byte> data, ReadOnlySpan<byte> terminator)
    {
        var before = (int)_pending.Length;
        _pending.Write(data);
        var start = Math.Max(0, before - terminator.Length + 1);
        var at = _pending.GetBuffer().AsSpan(start, (int)_pending.Length - start).IndexOf(terminator);
        if (at < 0)
        {
            return data.Length;
        }
        var end = start + at + terminator.Length;
        _pending.SetLength(end);
        return end - before;
    }

    private static bool EndsWith(MemoryStream stream, ReadOnlySpan<byte> suffix) =>
        stream.Length >= suffix.Length && stream.GetBuffer().AsSpan((int)stream.Length - suffix.Length, suffix.Length).SequenceEqual(suffix);

    private byte[] Complete(ReadOnlySpan<byte> block)
    {
        switch (_state)
        {
            case State.ChunkSize:
            {
                var line = block[..^2];
                ulong size = 0;
                var used = 0;
                if (line.IsEmpty || line.Length > 16 || !Utf8Parser.TryParse(line, out size, out used, 'x') || used != line.Length || size > int.MaxValue)
                {
                    Fail("a chunk-size line is not hexadecimal");
                }
                if (size == 0)
                {
                    // The last chunk: HttpClient sends no trailers, so "0\r\n" must be followed by the empty line.
                    _state = State.Trailers;
                    return [.. block];
                }
                _state = State.ChunkData;
                _remaining = (long)size;
                return [.. block];
            }
            case State.Trailers:
                if (!block.SequenceEqual("\r\n"u8))
                {
                    Fail("a chunked body has a trailer section");
                }
                _state = State.Headers;
                return [.. block];
            default:
                return RewriteHead(block);
        }
    }

    private byte[] RewriteHead(ReadOnlySpan<byte> head)
    {
        if (forUpgrade && _requests > 0)
        {
            Fail("an upgrade connection carries one request");
        }
        _requests++;
        var lines = head[..^4]; // without the final CRLF CRLF
        var requestLineEnd = lines.IndexOf("\r\n"u8);
        var requestLine = requestLineEnd < 0 ? lines : lines[..requestLineEnd];
        if (!IsRequestLine(requestLine))
        {
            Fail("the request line is malformed");
        }
        var markerStart = -1;
        var markerEnd = -1;
        byte[] identity = [];
        long? contentLength = null;
        var chunked = false;
        var upgrade = false;
        var position = requestLine.Length + 2;
        while (position < lines.Length + 2 && requestLineEnd >= 0)
        {
            var rest = lines[position..];
            var end = rest.IndexOf("\r\n"u8);
            var line = end < 0 ? rest : rest[..end];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0 || !FieldValues.IsToken(line[..colon]))
            {
                Fail("a header line has no valid field name");
            }
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(" \t"u8);
            if (!FieldValues.IsFieldValue(value))
            {
                Fail($"the value of {Encoding.ASCII.GetString(name)} contains a control character");
            }
            if (Ascii.EqualsIgnoreCase(name, blocks.MarkerNameBytes))
            {
                if (markerStart >= 0 || !blocks.TryGet(value, out identity))
                {
                    Fail(markerStart >= 0 ? "a request head carries two identity markers" : "an identity marker has no identity in flight");
                }
                markerStart = position;
                markerEnd = position + line.Length + 2;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                long length = 0;
                if (contentLength is not null || value.IsEmpty || value.Length > 18 || value.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0 || !Utf8Parser.TryParse(value, out length, out _))
                {
                    Fail("Content-Length is not one decimal number");
                }
                contentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                if (chunked || !Ascii.EqualsIgnoreCase(value, "chunked"u8))
                {
                    Fail("Transfer-Encoding is not chunked");
                }
                chunked = true;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Upgrade"u8))
            {
                upgrade = true;
            }
            position += line.Length + 2;
        }
        if (markerStart < 0)
        {
            Fail("a request head carries no identity marker");
        }
        if (chunked && contentLength is not null)
        {
            Fail("a request head has both Content-Length and Transfer-Encoding");
        }
        if (upgrade && !forUpgrade)
        {
            Fail("an upgrade request on a pooled connection");
        }

        var output = new byte[head.Length - (markerEnd - markerStart) + identity.Length];
        head[..markerStart].CopyTo(output);
        identity.CopyTo(output.AsSpan(markerStart));
        head[markerEnd..].CopyTo(output.AsSpan(markerStart + identity.Length));

        if (upgrade)
        {
            _state = State.Tunnel;
        }
        else if (chunked)
        {
            _state = State.ChunkSize;
        }
        else if (contentLength > 0)
        {
            _state = State.Body;
            _remaining = contentLength.Value;
        }
        else
        {
            _state = State.Headers;
        }
        return output;
    }

    // method SP request-target SP HTTP-version, each part visible ASCII.
    private static bool IsRequestLine(ReadOnlySpan<byte> line)
    {
        var first = line.IndexOf((byte)' ');
        var last = line.LastIndexOf((byte)' ');
        if (first <= 0 || last <= first + 1 || !FieldValues.IsToken(line[..first]) || !line[(last + 1)..].SequenceEqual("HTTP/1.1"u8))
        {
            return false;
        }
        return line[(first + 1)..last].IndexOfAnyExceptInRange((byte)'!', (byte)'~') < 0;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Fail(string reason)
    {
        _state = State.Broken;
        _pending.SetLength(0);
        throw new UpstreamHeaderException(reason);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _pending.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await _pending.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>A request head the gateway would not put on the upstream wire; the request is refused, the connection dropped.</summary>
internal sealed class UpstreamHeaderException(string reason) : IOException("refused to write the request upstream: " + reason);
