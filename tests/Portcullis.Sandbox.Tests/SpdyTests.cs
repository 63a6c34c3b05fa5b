using System.Buffers.Binary;
using System.IO.Compression;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Portcullis.Sandbox.Streaming.Spdy;

namespace Portcullis.Sandbox.Tests;

/// <summary>SPDY/3.1 exec without kubectl: a minimal client written from the framing rules.</summary>
public sealed class SpdyTests
{
    [Fact]
    public void Inflater_Decodes_What_ZLibStream_Compresses_Across_Sync_Flushes()
    {
        var first = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("streamtype stdout stderr error ", 20)));
        var second = Encoding.ASCII.GetBytes("streamtype stdin and something new 0123456789");
        using var compressed = new MemoryStream();
        using var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true);
        zlib.Write(first);
        zlib.Flush();
        var firstChunk = compressed.ToArray();
        zlib.Write(second);
        zlib.Flush();
        var secondChunk = compressed.ToArray()[firstChunk.Length..];
        var inflater = new Inflater(SpdyDictionary.Bytes);

        Assert.Equal(first, inflater.Inflate(firstChunk));
        Assert.Equal(second, inflater.Inflate(secondChunk));
    }

    [Fact]
    public void Dictionary_Is_The_SPDY3_One()
    {
        // The SPDY/3 dictionary is 1423 bytes and ends with "enq=0.".
        Assert.Equal(1423, SpdyDictionary.Bytes.Length);
        Assert.EndsWith("enq=0.", Encoding.ASCII.GetString(SpdyDictionary.Bytes), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exec_Over_Spdy_Echoes_Stdin_And_Reports_Status()
    {
        await using var server = await TestSandbox.StartAsync();
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Uri.Host, server.Port, timeout.Token);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificates = [SandboxPki.Shared.Client],
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, certificate, _, _) => TestSandbox.TrustsTestCa(certificate),
        }, timeout.Token);

        var request = "POST /api/v1/namespaces/dev/pods/web-1/exec?command=cat&stdin=true&stdout=true HTTP/1.1\r\n" +
            $"Host: localhost:{server.Port}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
            "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n";
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);
        var response = await ReadHttpHeadAsync(tls, timeout.Token);
        Assert.StartsWith("HTTP/1.1 101", response, StringComparison.Ordinal);
        Assert.Contains("X-Stream-Protocol-Version: v4.channel.k8s.io", response, StringComparison.OrdinalIgnoreCase);

        var client = new MiniSpdyClient(tls);
        await client.OpenStreamAsync(1, "error", timeout.Token);
        await client.OpenStreamAsync(3, "stdin", timeout.Token);
        await client.OpenStreamAsync(5, "stdout", timeout.Token);
        await client.SendDataAsync(3, "round trip", fin: true, timeout.Token);

        var received = await client.ReadUntilFinAsync([1, 5], timeout.Token);

        Assert.Equal("round trip", received[5]);
        Assert.Equal("Success", JsonNode.Parse(received[1])!["status"]!.GetValue<string>());
    }

    private static async Task<string> ReadHttpHeadAsync(Stream stream, CancellationToken cancel)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!head.TakeLast(4).SequenceEqual("\r\n\r\n"u8.ToArray()))
        {
            if (await stream.ReadAsync(one, cancel) == 0)
            {
                throw new EndOfStreamException("connection closed during the upgrade response");
            }
            head.Add(one[0]);
        }
        return Encoding.ASCII.GetString([.. head]);
    }

    /// <summary>
    /// Just enough of a SPDY/3 client: header blocks are sent as a zlib stream that names the SPDY
    /// dictionary but uses stored blocks, so no deflater with a preset dictionary is needed.
    /// </summary>
    private sealed class MiniSpdyClient(Stream stream)
    {
        private bool _zlibHeaderSent;

        public async Task OpenStreamAsync(int id, string streamType, CancellationToken cancel)
        {
            var block = HeaderBlock(("streamtype", streamType));
            var payload = new byte[10 + block.Length];
            BinaryPrimitives.WriteInt32BigEndian(payload, id);
            block.CopyTo(payload, 10);
            await WriteControlAsync(1, payload, cancel);
        }

        public async Task SendDataAsync(int id, string text, bool fin, CancellationToken cancel)
        {
            var data = Encoding.UTF8.GetBytes(text);
            var header = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(header, id);
            header[4] = fin ? (byte)1 : (byte)0;
            header[5] = (byte)(data.Length >> 16);
            header[6] = (byte)(data.Length >> 8);
            header[7] = (byte)data.Length;
            await stream.WriteAsync(header.Concat(data).ToArray(), cancel);
        }

        /// <summary>Collects DATA per stream until every listed stream has been half-closed by the server.</summary>
        public async Task<Dictionary<int, string>> ReadUntilFinAsync(int[] streams, CancellationToken cancel)
        {
            var text = streams.ToDictionary(s => s, _ => "");
            var open = new HashSet<int>(streams);
            var header = new byte[8];
            while (open.Count > 0)
            {
                await stream.ReadExactlyAsync(header, cancel);
                var length = header[5] << 16 | header[6] << 8 | header[7];
                var payload = new byte[length];
                await stream.ReadExactlyAsync(payload, cancel);
                if ((header[0] & 0x80) != 0)
                {
                    continue; // SYN_REPLY and other control frames
                }
                var id = BinaryPrimitives.ReadInt32BigEndian(header) & 0x7fffffff;
                if (text.ContainsKey(id))
                {
                    text[id] += Encoding.UTF8.GetString(payload);
                }
                if ((header[4] & 1) != 0)
                {
                    open.Remove(id);
                }
            }
            return text;
        }

        private byte[] HeaderBlock(params (string Name, string Value)[] headers)
        {
            using var raw = new MemoryStream();
            var number = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(number, headers.Length);
            raw.Write(number);
            foreach (var (name, value) in headers)
            {
                foreach (var part in new[] { name, value })
                {
                    var bytes = Encoding.UTF8.GetBytes(part);
                    BinaryPrimitives.WriteInt32BigEndian(number, bytes.Length);
                    raw.Write(number);
                    raw.Write(bytes);
                }
            }
            var block = raw.ToArray();
            using var zlib = new MemoryStream();
            if (!_zlibHeaderSent)
            {
                // CMF 0x78, FLG with FDICT set and a valid check, then the dictionary's Adler-32.
                zlib.Write([0x78, 0xbb]);
                var id = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(id, Inflater.Adler32(SpdyDictionary.Bytes));
                zlib.Write(id);
                _zlibHeaderSent = true;
            }
            zlib.Write([0x00, (byte)block.Length, (byte)(block.Length >> 8), (byte)~block.Length, (byte)(~block.Length >> 8)]);
            zlib.Write(block);
            zlib.Write([0x00, 0x00, 0x00, 0xff, 0xff]);
            return zlib.ToArray();
        }

        private async Task WriteControlAsync(ushort type, byte[] payload, CancellationToken cancel)
        {
            var header = new byte[8];
            BinaryPrimitives.WriteUInt16BigEndian(header, 0x8003);
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), type);
            header[5] = (byte)(payload.Length >> 16);
            header[6] = (byte)(payload.Length >> 8);
            header[7] = (byte)payload.Length;
            await stream.WriteAsync(header.Concat(payload).ToArray(), cancel);
        }
    }
}
