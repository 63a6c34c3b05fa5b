using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>How <see cref="ScriptedUpstream"/> answers one request.</summary>
public enum UpstreamMove
{
    /// <summary>Read the whole body by its framing, then answer 200 and keep the connection.</summary>
    AnswerAfterBody,
    /// <summary>Answer 403 as soon as the head is in (as kube-apiserver's authorization does), keep the connection and
    /// go on reading whatever comes next as the body the head announced.</summary>
    AnswerBeforeBody,
    /// <summary>Read the request, then close the connection without a byte of answer (a pooled connection that died).</summary>
    CloseWithoutAnswer,
    /// <summary>Answer an upgrade (exec over WebSocket) with 101, read the tunnel's first line, then reset the connection
    /// (TCP RST, no TLS close): an exec stream broken mid-way.</summary>
    UpgradeThenReset,
}

/// <summary>
/// A stand-in kube-apiserver for attacks that need the upstream to misbehave at a chosen moment. It keeps every byte each
/// connection received (<see cref="Wire"/>), so a head the gateway's filter never saw — passed through as if it were a
/// body, say — is still visible, and it records each request it parsed as <see cref="RawRequest"/>.
/// </summary>
public sealed class ScriptedUpstream : TlsTestServer
{
    private readonly Func<RawRequest, int, UpstreamMove> _script;
    private readonly ConcurrentQueue<RawRequest> _requests = new();
    private readonly ConcurrentDictionary<int, MemoryStream> _wire = new();
    private int _requestCount;

    /// <param name="script">Decides the move for a request from its head and its number (0-based, over all connections).</param>
    public ScriptedUpstream(X509Certificate2 serverCertificate, X509Certificate2 clientCA, Func<RawRequest, int, UpstreamMove> script, IPAddress? address = null)
        : base(serverCertificate, clientCA, clientCertificateRequired: false, address)
    {
        _script = script;
        BeginAccepting();
    }

    /// <summary>Every request parsed, the gateway's /healthz probes left out.</summary>
    public IReadOnlyList<RawRequest> Requests => [.. _requests.Where(r => r.Target != "/healthz")];

    /// <summary>Every byte received, per connection, in order (Latin-1).</summary>
    public IReadOnlyList<string> Wire
    {
        get
        {
            var result = new List<string>();
            foreach (var (_, stream) in _wire.OrderBy(p => p.Key))
            {
                lock (stream)
                {
                    result.Add(Encoding.Latin1.GetString(stream.GetBuffer(), 0, (int)stream.Length));
                }
            }
            return result;
        }
    }

    protected override async Task ServeAsync(SslStream tls, int connection)
    {
        var wire = _wire.GetOrAdd(connection, _ => new MemoryStream());
        var reader = new ByteReader(new TapStream(tls, wire));
        while (!Stop.IsCancellationRequested)
        {
            var head = await reader.ReadUntilAsync("\r\n\r\n"u8.ToArray(), 1 << 20, Stop.Token);
            if (head is null)
            {
                return;
            }
            var request = RawUpstream.ParseHead(head, connection, tls.TargetHostName);
            var probe = request.Target == "/healthz";
            var move = probe ? UpstreamMove.AnswerAfterBody : _script(request, Interlocked.Increment(ref _requestCount) - 1);
            if (move == UpstreamMove.AnswerBeforeBody)
            {
                await AnswerAsync(tls, "403 Forbidden");
            }
            var body = await RawUpstream.ReadBodyAsync(reader, request, Stop.Token);
            _requests.Enqueue(request with { Body = body });
            if (move == UpstreamMove.UpgradeThenReset)
            {
                // The accept value of RFC 6455's example key; nothing on this path checks it.
                await tls.WriteAsync("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"u8.ToArray(), Stop.Token);
                await reader.ReadUntilAsync("\n"u8.ToArray(), 1 << 16, Stop.Token);
                Reset(connection);
                return;
            }
            if (move == UpstreamMove.CloseWithoutAnswer)
            {
                return;
            }
            if (move == UpstreamMove.AnswerAfterBody)
            {
                await AnswerAsync(tls, "200 OK");
            }
        }
    }

    private async Task AnswerAsync(SslStream tls, string status)
    {
        const string Body = "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[]}";
        await tls.WriteAsync(Encoding.UTF8.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {Body.Length}\r\n\r\n{Body}"), Stop.Token);
    }

    /// <summary>Copies every byte read into a record.</summary>
    private sealed class TapStream(Stream inner, MemoryStream record) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            lock (record)
            {
                record.Write(buffer.Span[..n]);
            }
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
