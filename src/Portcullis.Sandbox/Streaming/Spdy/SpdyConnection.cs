using System.Buffers.Binary;
using System.Text;

namespace Portcullis.Sandbox.Streaming.Spdy;

/// <summary>A SPDY/3.1 frame read from the connection.</summary>
internal abstract record SpdyFrame;

/// <summary>SYN_STREAM: the client opens a stream, with its (decompressed) headers.</summary>
internal sealed record SynStreamFrame(int StreamId, bool Fin, IReadOnlyDictionary<string, string> Headers) : SpdyFrame;

/// <summary>A DATA frame.</summary>
internal sealed record DataFrame(int StreamId, bool Fin, byte[] Data) : SpdyFrame;

/// <summary>RST_STREAM: the client abandoned a stream.</summary>
internal sealed record ResetFrame(int StreamId) : SpdyFrame;

/// <summary>GOAWAY: the client is closing the connection.</summary>
internal sealed record GoAwayFrame : SpdyFrame;

/// <summary>Any control frame the server answers itself or ignores (SETTINGS, PING, WINDOW_UPDATE, HEADERS …).</summary>
internal sealed record IgnoredFrame(int Type) : SpdyFrame;

/// <summary>
/// SPDY/3.1 framing over an upgraded connection (server side): reads frames, answers PING, writes
/// SYN_REPLY and DATA. Header blocks are zlib with the SPDY dictionary inbound; outbound they are
/// written as stored (uncompressed) deflate blocks, which every zlib reader accepts without the dictionary.
/// </summary>
internal sealed class SpdyConnection : IAsyncDisposable
{
    private const ushort Version = 3;
    private const ushort SynStream = 1;
    private const ushort SynReply = 2;
    private const ushort RstStream = 3;
    private const ushort Ping = 6;
    private const ushort GoAway = 7;
    private const byte FlagFin = 0x01;

    private readonly Stream _transport;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Inflater _inflater = new(SpdyDictionary.Bytes);
    private bool _headerStreamStarted;

    public SpdyConnection(Stream transport) => _transport = transport;

    /// <summary>Reads the next frame; null when the client closed the connection.</summary>
    public async Task<SpdyFrame?> ReadFrameAsync(CancellationToken cancel)
    {
        var header = new byte[8];
        if (!await ReadExactlyOrEndAsync(header, cancel))
        {
            return null;
        }
        var length = header[5] << 16 | header[6] << 8 | header[7];
        var flags = header[4];
        var payload = new byte[length];
        if (!await ReadExactlyOrEndAsync(payload, cancel))
        {
            return null;
        }
        if ((header[0] & 0x80) == 0)
        {
            var streamId = BinaryPrimitives.ReadInt32BigEndian(header) & 0x7fffffff;
            return new DataFrame(streamId, (flags & FlagFin) != 0, payload);
        }
        var type = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2));
        switch (type)
        {
            case SynStream:
                {
                    var streamId = BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7fffffff;
                    var headers = ParseHeaderBlock(_inflater.Inflate(payload.AsSpan(10)));
                    return new SynStreamFrame(streamId, (flags & FlagFin) != 0, headers);
                }
            case RstStream:
                return new ResetFrame(BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7fffffff);
            case Ping:
                // PING is answered by echoing it.
                await WriteAsync(header, payload, cancel);
                return new IgnoredFrame(type);
            case GoAway:
                return new GoAwayFrame();
            default:
                return new IgnoredFrame(type);
        }
    }

    /// <summary>Accepts a stream the client opened.</summary>
    public Task SendSynReplyAsync(int streamId, CancellationToken cancel)
    {
        var block = CompressHeaderBlock(EncodeHeaderBlock([]));
        var payload = new byte[4 + block.Length];
        BinaryPrimitives.WriteInt32BigEndian(payload, streamId);
        block.CopyTo(payload, 4);
        return WriteAsync(ControlHeader(SynReply, 0, payload.Length), payload, cancel);
    }

    /// <summary>Sends data on a stream; <paramref name="fin"/> half-closes it.</summary>
    public async Task SendDataAsync(int streamId, ReadOnlyMemory<byte> data, bool fin, CancellationToken cancel)
    {
        // A frame carries at most 16 MiB; the echo container writes far less, but split anyway.
        const int MaxFrame = 64 * 1024;
        var offset = 0;
        do
        {
            var chunk = data.Slice(offset, Math.Min(MaxFrame, data.Length - offset));
            offset += chunk.Length;
            var header = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(header, streamId & 0x7fffffff);
            header[4] = fin && offset == data.Length ? FlagFin : (byte)0;
            header[5] = (byte)(chunk.Length >> 16);
            header[6] = (byte)(chunk.Length >> 8);
            header[7] = (byte)chunk.Length;
            await WriteAsync(header, chunk, cancel);
        }
        while (offset < data.Length);
    }

    public async ValueTask DisposeAsync()
    {
        _writeLock.Dispose();
        await _transport.DisposeAsync();
    }

    private async Task WriteAsync(byte[] header, ReadOnlyMemory<byte> payload, CancellationToken cancel)
    {
        await _writeLock.WaitAsync(cancel);
        try
        {
            await _transport.WriteAsync(header, cancel);
            if (payload.Length > 0)
            {
                await _transport.WriteAsync(payload, cancel);
            }
            await _transport.FlushAsync(cancel);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private static byte[] ControlHeader(ushort type, byte flags, int length)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteUInt16BigEndian(header, (ushort)(0x8000 | Version));
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), type);
        header[4] = flags;
        header[5] = (byte)(length >> 16);
        header[6] = (byte)(length >> 8);
        header[7] = (byte)length;
        return header;
    }

    private async Task<bool> ReadExactlyOrEndAsync(byte[] buffer, CancellationToken cancel)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await _transport.ReadAsync(buffer.AsMemory(read), cancel);
            if (n == 0)
            {
                return false;
            }
            read += n;
        }
        return true;
    }

    private static Dictionary<string, string> ParseHeaderBlock(byte[] block)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var span = block.AsSpan();
        var count = BinaryPrimitives.ReadInt32BigEndian(span);
        var position = 4;
        for (var i = 0; i < count; i++)
        {
            var nameLength = BinaryPrimitives.ReadInt32BigEndian(span[position..]);
            var name = Encoding.UTF8.GetString(span.Slice(position + 4, nameLength));
            position += 4 + nameLength;
            var valueLength = BinaryPrimitives.ReadInt32BigEndian(span[position..]);
            // Several values of one header travel NUL-separated; the first is enough here.
            var value = Encoding.UTF8.GetString(span.Slice(position + 4, valueLength)).Split('\0')[0];
            position += 4 + valueLength;
            headers[name] = value;
        }
        return headers;
    }

    private static byte[] EncodeHeaderBlock(IReadOnlyList<(string Name, string Value)> headers)
    {
        using var buffer = new MemoryStream();
        Span<byte> number = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(number, headers.Count);
        buffer.Write(number);
        foreach (var (name, value) in headers)
        {
            foreach (var text in (string[])[name.ToLowerInvariant(), value])
            {
                var bytes = Encoding.UTF8.GetBytes(text);
                BinaryPrimitives.WriteInt32BigEndian(number, bytes.Length);
                buffer.Write(number);
                buffer.Write(bytes);
            }
        }
        return buffer.ToArray();
    }

    // One zlib stream per direction: the first block carries the zlib header (no preset dictionary);
    // every block is a stored deflate block followed by a sync-flush marker.
    private byte[] CompressHeaderBlock(byte[] block)
    {
        using var buffer = new MemoryStream();
        if (!_headerStreamStarted)
        {
            buffer.Write([0x78, 0x01]);
            _headerStreamStarted = true;
        }
        buffer.WriteByte(0x00);
        buffer.Write([(byte)block.Length, (byte)(block.Length >> 8), (byte)~block.Length, (byte)(~block.Length >> 8)]);
        buffer.Write(block);
        // The empty stored block of a sync flush: Go's inflater hands out a stored block's bytes only
        // when it reaches the next block, so without this marker the client would wait for the next frame.
        buffer.Write([0x00, 0x00, 0x00, 0xff, 0xff]);
        return buffer.ToArray();
    }
}
