using System.Buffers;
using System.Net;
using System.Text;

namespace Portcullis.Gateway.Forwarding;

/// <summary>
/// HttpClient joins repeated header values into one line (<c>Impersonate-Group: a, b</c>), but kube-apiserver reads each
/// header line as one value and never splits on commas, so a user in two groups would arrive in one group named "a, b".
/// The gateway therefore writes multi-valued identity headers as one private line,
/// <c>X-Portcullis-Split-Impersonate-Group: a,b</c> (each value percent-encoded), and this filter on the upstream HTTP/1.1
/// connection rewrites that line into one <c>Impersonate-Group</c> line per value. It tracks request framing
/// (Content-Length, chunked, upgrade) so that only header blocks are ever rewritten; bodies and tunnels pass through.
/// </summary>
internal sealed class MultiValueHeaderStream(Stream inner) : Stream
{
    public const string SplitPrefix = "X-Portcullis-Split-";

    private enum State { Headers, Body, ChunkSize, ChunkData, ChunkDataEnd, Trailers, Tunnel }

    private State _state = State.Headers;
    private readonly MemoryStream _pending = new();
    private long _remaining;

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
                case State.Tunnel:
                    await inner.WriteAsync(buffer, cancellationToken);
                    return;
                case State.Body:
                case State.ChunkData:
                {
                    var n = (int)Math.Min(_remaining, buffer.Length);
                    await inner.WriteAsync(buffer[..n], cancellationToken);
                    buffer = buffer[n..];
                    _remaining -= n;
                    if (_remaining == 0)
                    {
                        _state = _state == State.Body ? State.Headers : State.ChunkDataEnd;
                        _remaining = _state == State.ChunkDataEnd ? 2 : 0;
                    }
                    break;
                }
                case State.ChunkDataEnd:
                {
                    var n = (int)Math.Min(_remaining, buffer.Length);
                    await inner.WriteAsync(buffer[..n], cancellationToken);
                    buffer = buffer[n..];
                    _remaining -= n;
                    if (_remaining == 0)
                    {
                        _state = State.ChunkSize;
                    }
                    break;
                }
                default:
                {
                    // Headers, ChunkSize and Trailers are line-oriented: buffer until their terminator.
                    var terminator = _state == State.ChunkSize ? "\r\n"u8 : "\r\n\r\n"u8;
                    var consumed = Accumulate(buffer.Span, terminator);
                    buffer = buffer[consumed..];
                    if (!EndsWith(_pending, terminator))
                    {
                        break; // need more bytes
                    }
                    var block = _pending.ToArray();
                    _pending.SetLength(0);
                    await inner.WriteAsync(Complete(block), cancellationToken);
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

    private byte[] Complete(byte[] block)
    {
        switch (_state)
        {
            case State.ChunkSize:
            {
                var line = Encoding.ASCII.GetString(block).Trim();
                var semi = line.IndexOf(';', StringComparison.Ordinal);
                var size = long.Parse(semi < 0 ? line : line[..semi], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
                if (size == 0)
                {
                    // The last chunk: its trailer section ends with an empty line. Keep "0\r\n" pending as the start of it.
                    _state = State.Trailers;
                    _pending.Write(block);
                    return [];
                }
                _state = State.ChunkData;
                _remaining = size;
                return block;
            }
            case State.Trailers:
                _state = State.Headers;
                return block;
            default:
                return RewriteHeaders(block);
        }
    }

    private byte[] RewriteHeaders(byte[] block)
    {
        var text = Encoding.Latin1.GetString(block);
        var lines = text.Split("\r\n");
        var output = new StringBuilder(text.Length + 64);
        long contentLength = 0;
        var chunked = false;
        var upgrade = false;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (i == lines.Length - 1 && line.Length == 0)
            {
                break;
            }
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (i > 0 && colon > 0)
            {
                var name = line[..colon];
                var value = line[(colon + 1)..].Trim();
                if (name.StartsWith(SplitPrefix, StringComparison.OrdinalIgnoreCase))
                {
                    var realName = name[SplitPrefix.Length..];
                    foreach (var encoded in value.Split(',', StringSplitOptions.RemoveEmptyEntries))
                    {
                        output.Append(realName).Append(": ").Append(WebUtility.UrlDecode(encoded)).Append("\r\n");
                    }
                    continue;
                }
                if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                {
                    contentLength = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                }
                else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && value.Contains("chunked", StringComparison.OrdinalIgnoreCase))
                {
                    chunked = true;
                }
                else if (name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase))
                {
                    upgrade = true;
                }
            }
            output.Append(line).Append("\r\n");
        }
        if (upgrade)
        {
            _state = State.Tunnel; // after a 101 the connection is a tunnel; after a refusal HttpClient drops it
        }
        else if (chunked)
        {
            _state = State.ChunkSize;
        }
        else if (contentLength > 0)
        {
            _state = State.Body;
            _remaining = contentLength;
        }
        else
        {
            _state = State.Headers;
        }
        return Encoding.Latin1.GetBytes(output.ToString());
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
