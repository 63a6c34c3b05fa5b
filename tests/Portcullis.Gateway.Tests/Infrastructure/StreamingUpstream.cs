using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>
/// The upstream side of one held long-running answer: the test writes its bytes when it chooses (<see cref="Send"/>),
/// and learns when the gateway closed the upstream connection (<see cref="Closed"/>).
/// </summary>
public sealed class HeldAnswer
{
    private readonly System.Threading.Channels.Channel<byte[]?> _sends = System.Threading.Channels.Channel.CreateUnbounded<byte[]?>();

    /// <summary>The request the upstream received, once it has.</summary>
    public TaskCompletionSource<RawRequest> Received { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when the head was written and flushed to the gateway (nothing of the body yet).</summary>
    public TaskCompletionSource HeadSent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when the gateway closed the upstream connection while the answer was held (or written).</summary>
    public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How many body writes the upstream has made so far (the test's <see cref="Send"/> calls that went out).</summary>
    public int Sent => Volatile.Read(ref _sent);

    private int _sent;

    /// <summary>Writes these bytes (one byte per character, Latin-1; chunk framing included, if any) to the gateway.</summary>
    public void Send(string bytes) => _sends.Writer.TryWrite(Encoding.Latin1.GetBytes(bytes));

    /// <summary>Ends the answer: the upstream closes its connection after what was sent.</summary>
    public void End() => _sends.Writer.TryWrite(null);

    internal async Task RunAsync(SslStream tls, RawRequest request, string head, CancellationToken stop)
    {
        Received.TrySetResult(request);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(head), stop);
        await tls.FlushAsync(stop);
        HeadSent.TrySetResult();
        // The gateway sends nothing more on this connection while the answer runs: a read that ends is its close.
        var closed = ReadUntilClosedAsync(tls, stop);
        while (true)
        {
            var next = _sends.Reader.ReadAsync(stop).AsTask();
            if (await Task.WhenAny(next, closed) == closed)
            {
                Closed.TrySetResult();
                return;
            }
            var bytes = await next;
            if (bytes is null)
            {
                return;
            }
            await tls.WriteAsync(bytes, stop);
            await tls.FlushAsync(stop);
            Interlocked.Increment(ref _sent);
        }
    }

    private static async Task ReadUntilClosedAsync(SslStream tls, CancellationToken stop)
    {
        var buffer = new byte[1024];
        try
        {
            while (await tls.ReadAsync(buffer, stop) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
        }
    }
}

/// <summary>
/// A stand-in kube-apiserver for long-running answers at the byte level: for every request (the gateway's /healthz
/// probes are answered 200 and left out) it writes the head the test gave, byte for byte, then holds the body until the
/// test sends it through the request's <see cref="HeldAnswer"/> — a watch with no event yet, a followed log with no new
/// line. Each request gets the next answer of <see cref="Answers"/>; the upstream connection is closed after each one.
/// </summary>
public sealed class StreamingUpstream : TlsTestServer
{
    private readonly string _head;
    private readonly ConcurrentQueue<RawRequest> _requests = new();

    /// <param name="head">The status line and header fields the upstream answers with, CRLF line ends, blank line included.</param>
    public StreamingUpstream(X509Certificate2 serverCertificate, X509Certificate2 clientCA, string head)
        : base(serverCertificate, clientCA, clientCertificateRequired: true, address: null)
    {
        _head = head;
        BeginAccepting();
    }

    /// <summary>The answers in the order requests arrive; a test takes the first with <c>Answers.Reader.ReadAsync</c>.</summary>
    public System.Threading.Channels.Channel<HeldAnswer> Answers { get; } = System.Threading.Channels.Channel.CreateUnbounded<HeldAnswer>();

    /// <summary>Every request received, the gateway's /healthz probes left out.</summary>
    public IReadOnlyList<RawRequest> Requests => [.. _requests];

    protected override async Task ServeAsync(SslStream tls, int connection)
    {
        var reader = new ByteReader(tls);
        while (!Stop.IsCancellationRequested)
        {
            var request = await RawUpstream.ReadRequestAsync(reader, connection, tls.TargetHostName, Stop.Token);
            if (request is null)
            {
                return;
            }
            if (request.Target == "/healthz")
            {
                await tls.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"u8.ToArray(), Stop.Token);
                continue;
            }
            _requests.Enqueue(request);
            var answer = new HeldAnswer();
            Answers.Writer.TryWrite(answer);
            await answer.RunAsync(tls, request, _head, Stop.Token);
            return;
        }
    }
}
