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
}

/// <summary>
/// A stand-in kube-apiserver for attacks that need the upstream to misbehave at a chosen moment. It keeps every byte each
/// connection received (<see cref="Wire"/>), so a head the gateway's filter never saw — passed through as if it were a
/// body, say — is still visible, and it records each request it parsed as <see cref="RawRequest"/>.
/// </summary>
public sealed class ScriptedUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly X509Certificate2 _serverCertificate;
    private readonly X509Certificate2 _clientCA;
    private readonly Func<RawRequest, int, UpstreamMove> _script;
    private readonly ConcurrentQueue<RawRequest> _requests = new();
    private readonly ConcurrentDictionary<int, MemoryStream> _wire = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;
    private int _connectionCount;
    private int _requestCount;

    /// <param name="script">Decides the move for a request from its head and its number (0-based, over all connections).</param>
    public ScriptedUpstream(X509Certificate2 serverCertificate, X509Certificate2 clientCA, Func<RawRequest, int, UpstreamMove> script, IPAddress? address = null)
    {
        _serverCertificate = serverCertificate;
        _clientCA = clientCA;
        _script = script;
        _listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        _listener.Start();
        Uri = new UriBuilder("https", (address ?? IPAddress.Loopback).ToString(), ((IPEndPoint)_listener.LocalEndpoint).Port).Uri;
        _accepting = AcceptAsync();
    }

    public Uri Uri { get; }

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

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient tcp;
            try
            {
                tcp = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            var id = Interlocked.Increment(ref _connectionCount);
            lock (_connections)
            {
                _connections.Add(ServeAsync(tcp, id));
            }
        }
    }

    private async Task ServeAsync(TcpClient tcp, int id)
    {
        using var _ = tcp;
        var wire = _wire.GetOrAdd(id, _ => new MemoryStream());
        try
        {
            await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = _serverCertificate,
                ClientCertificateRequired = false, // Passthrough sends none; when one comes it must be of the test CA
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is null || ValidateClient(cert),
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            }, _stop.Token);
            var reader = new ByteReader(new TapStream(tls, wire));
            while (!_stop.IsCancellationRequested)
            {
                var head = await reader.ReadUntilAsync("\r\n\r\n"u8.ToArray(), 1 << 20, _stop.Token);
                if (head is null)
                {
                    return;
                }
                var request = ParseHead(head, id, tls.TargetHostName);
                var probe = request.Target == "/healthz";
                var move = probe ? UpstreamMove.AnswerAfterBody : _script(request, Interlocked.Increment(ref _requestCount) - 1);
                if (move == UpstreamMove.AnswerBeforeBody)
                {
                    await AnswerAsync(tls, "403 Forbidden");
                }
                var body = await ReadBodyAsync(reader, request);
                _requests.Enqueue(request with { Body = body });
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
        catch (Exception ex) when (ex is IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException or ObjectDisposedException or SocketException or FormatException)
        {
            // the gateway closed the connection, or the test ended
        }
    }

    private bool ValidateClient(X509Certificate cert)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_clientCA);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(cert);
        return chain.Build(leaf);
    }

    private async Task AnswerAsync(SslStream tls, string status)
    {
        const string Body = "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[]}";
        await tls.WriteAsync(Encoding.UTF8.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {Body.Length}\r\n\r\n{Body}"), _stop.Token);
    }

    private static RawRequest ParseHead(byte[] head, int connection, string? serverName)
    {
        var lines = Encoding.Latin1.GetString(head, 0, head.Length - 4).Split("\r\n");
        var fields = new List<(string, string)>();
        var anomalies = new List<string>();
        for (var i = 1; i < lines.Length; i++)
        {
            var colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                anomalies.Add($"line {i} is not a field line");
                continue;
            }
            fields.Add((lines[i][..colon], lines[i][(colon + 1)..].Trim(' ', '\t')));
        }
        return new RawRequest(connection, lines[0], fields, head, [], anomalies, serverName);
    }

    private async Task<byte[]> ReadBodyAsync(ByteReader reader, RawRequest request)
    {
        if (request.Values("Transfer-Encoding").Any(v => v.Contains("chunked", StringComparison.OrdinalIgnoreCase)))
        {
            using var all = new MemoryStream();
            while (true)
            {
                var sizeLine = await reader.ReadUntilAsync("\r\n"u8.ToArray(), 1024, _stop.Token) ?? throw new IOException("truncated chunk size");
                var size = Convert.ToInt32(Encoding.ASCII.GetString(sizeLine, 0, sizeLine.Length - 2).Split(';')[0], 16);
                if (size == 0)
                {
                    await reader.ReadUntilAsync("\r\n"u8.ToArray(), 1 << 16, _stop.Token);
                    return all.ToArray();
                }
                all.Write(await reader.ReadExactlyAsync(size, _stop.Token));
                await reader.ReadExactlyAsync(2, _stop.Token);
            }
        }
        return request.Values("Content-Length") is [var length]
            ? await reader.ReadExactlyAsync(int.Parse(length, System.Globalization.CultureInfo.InvariantCulture), _stop.Token)
            : [];
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] open;
        lock (_connections)
        {
            open = [.. _connections];
        }
        await Task.WhenAll(open).WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
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
