using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>
/// One HTTP/1.1 request exactly as its bytes arrived on the upstream socket: the request line, every header line in
/// order (split at the first colon, the value trimmed of SP/HTAB as an HTTP parser does), the body, and anything a
/// parser would have hidden (a bare CR or LF inside a line, a line without a colon).
/// </summary>
public sealed record RawRequest(int Connection, string RequestLine, IReadOnlyList<(string Name, string Value)> Lines,
    byte[] Head, byte[] Body, IReadOnlyList<string> Anomalies, string? ServerName)
{
    public string Method => RequestLine.Split(' ')[0];
    public string Target => RequestLine.Split(' ').ElementAtOrDefault(1) ?? "";

    /// <summary>Every value of header lines named <paramref name="name"/> (case-insensitive), in wire order.</summary>
    public string[] Values(string name) =>
        [.. Lines.Where(l => l.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(l => l.Value)];

    /// <summary>Header lines whose name, lower-cased with '_' as '-', starts with <paramref name="prefix"/>.</summary>
    public (string Name, string Value)[] NamesLike(string prefix) =>
        [.. Lines.Where(l => l.Name.Replace('_', '-').StartsWith(prefix, StringComparison.OrdinalIgnoreCase))];

    public string HeadText => Encoding.Latin1.GetString(Head);
}

/// <summary>
/// A stand-in kube-apiserver that parses nothing for the gateway's benefit: it reads raw bytes from each TLS
/// connection (client certificate of the test CA required, like kube-apiserver with the gateway's credentials),
/// splits them into requests by HTTP/1.1 framing and records each one as <see cref="RawRequest"/>. A second request
/// smuggled inside the first one's bytes shows up as a second record. It answers 200 with a small JSON list, and an
/// upgrade request with 404 (a refused exec), keeping the connection open either way.
/// </summary>
public sealed class RawUpstream : TlsTestServer
{
    private readonly ConcurrentQueue<RawRequest> _requests = new();

    private RawUpstream(X509Certificate2 serverCertificate, X509Certificate2 clientCA)
        : base(serverCertificate, clientCA, clientCertificateRequired: true, address: null) => BeginAccepting();

    public static RawUpstream Start(X509Certificate2 serverCertificate, X509Certificate2 clientCA) => new(serverCertificate, clientCA);

    /// <summary>Every request received, the gateway's own /healthz probes left out.</summary>
    public IReadOnlyList<RawRequest> Requests => [.. _requests.Where(r => r.Target != "/healthz")];

    protected override async Task ServeAsync(SslStream tls, int connection)
    {
        var reader = new ByteReader(tls);
        while (!Stop.IsCancellationRequested)
        {
            var request = await ReadRequestAsync(reader, connection, tls.TargetHostName, Stop.Token);
            if (request is null)
            {
                return;
            }
            _requests.Enqueue(request);
            var upgrade = request.Values("Upgrade").Length > 0;
            var body = upgrade
                ? "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"pods \\\"nope\\\" not found\",\"reason\":\"NotFound\",\"code\":404}"
                : "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[]}";
            var status = upgrade ? "404 Not Found" : "200 OK";
            var response = $"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";
            await tls.WriteAsync(Encoding.UTF8.GetBytes(response), Stop.Token);
        }
    }

    /// <summary>Reads one request's head and body by HTTP/1.1 framing; null at a clean end of the connection.</summary>
    internal static async Task<RawRequest?> ReadRequestAsync(ByteReader reader, int connection, string? serverName, CancellationToken cancel)
    {
        var head = await reader.ReadUntilAsync("\r\n\r\n"u8.ToArray(), 1 << 20, cancel);
        if (head is null)
        {
            return null;
        }
        var request = ParseHead(head, connection, serverName);
        return request with { Body = await ReadBodyAsync(reader, request, cancel) };
    }

    /// <summary>
    /// A request head exactly as received: every header line in order, values read as UTF-8 (how identities are
    /// written), and anything a parser would hide (a bare CR or LF, a control character, a line without a colon).
    /// </summary>
    internal static RawRequest ParseHead(byte[] head, int connection, string? serverName)
    {
        var text = Encoding.Latin1.GetString(head, 0, head.Length - 4);
        var lines = text.Split("\r\n");
        var anomalies = new List<string>();
        var fields = new List<(string, string)>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Contains('\n', StringComparison.Ordinal) || line.Contains('\r', StringComparison.Ordinal))
            {
                anomalies.Add($"bare CR or LF in line {i}");
            }
            if (line.Any(c => c < 0x20 && c != '\t' && c != '\r' && c != '\n' || c == 0x7F))
            {
                anomalies.Add($"control character in line {i}");
            }
            if (i == 0)
            {
                continue;
            }
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                anomalies.Add($"line {i} is not a field line");
                continue;
            }
            // Values are read as kube-apiserver's Go code reads them: bytes, here shown as UTF-8 (identities are UTF-8).
            fields.Add((line[..colon], Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(line[(colon + 1)..].Trim(' ', '\t')))));
        }
        return new RawRequest(connection, lines[0], fields, head, [], anomalies, serverName);
    }

    /// <summary>The body announced by the head: chunked (trailer section read and dropped) or Content-Length.</summary>
    internal static async Task<byte[]> ReadBodyAsync(ByteReader reader, RawRequest request, CancellationToken cancel)
    {
        if (request.Values("Transfer-Encoding").Any(v => v.Contains("chunked", StringComparison.OrdinalIgnoreCase)))
        {
            using var all = new MemoryStream();
            while (true)
            {
                var sizeLine = await reader.ReadUntilAsync("\r\n"u8.ToArray(), 1024, cancel) ?? throw new IOException("truncated chunk size");
                var size = Convert.ToInt32(Encoding.ASCII.GetString(sizeLine, 0, sizeLine.Length - 2).Split(';')[0], 16);
                if (size == 0)
                {
                    await reader.ReadUntilAsync("\r\n"u8.ToArray(), 1 << 16, cancel); // the (empty) trailer section
                    break;
                }
                all.Write(await reader.ReadExactlyAsync(size, cancel));
                await reader.ReadExactlyAsync(2, cancel);
            }
            return all.ToArray();
        }
        return request.Values("Content-Length") is [var length]
            ? await reader.ReadExactlyAsync(int.Parse(length, System.Globalization.CultureInfo.InvariantCulture), cancel)
            : [];
    }
}

/// <summary>A buffered reader of raw bytes with look-ahead for a terminator.</summary>
internal sealed class ByteReader(Stream stream)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    /// <summary>Bytes up to and including <paramref name="terminator"/>; null when the stream ends before any byte.</summary>
    public async Task<byte[]?> ReadUntilAsync(byte[] terminator, int max, CancellationToken cancel)
    {
        using var collected = new MemoryStream();
        while (true)
        {
            var available = _buffer.AsSpan(_start, _end - _start);
            // Search the collected tail plus the new bytes, so a terminator split across reads is found.
            var tail = (int)Math.Min(collected.Length, terminator.Length - 1);
            var window = new byte[tail + available.Length];
            collected.GetBuffer().AsSpan((int)collected.Length - tail, tail).CopyTo(window);
            available.CopyTo(window.AsSpan(tail));
            var at = window.AsSpan().IndexOf(terminator);
            if (at >= 0)
            {
                var take = at + terminator.Length - tail;
                collected.Write(available[..take]);
                _start += take;
                return collected.ToArray();
            }
            collected.Write(available);
            _start = _end = 0;
            if (collected.Length > max)
            {
                throw new IOException("header section too large");
            }
            var n = await stream.ReadAsync(_buffer, cancel);
            if (n == 0)
            {
                return collected.Length == 0 ? null : throw new IOException("connection closed mid-request");
            }
            _end = n;
        }
    }

    public async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancel)
    {
        var result = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            if (_start == _end)
            {
                var n = await stream.ReadAsync(_buffer, cancel);
                if (n == 0)
                {
                    throw new IOException("connection closed mid-body");
                }
                _start = 0;
                _end = n;
            }
            var take = Math.Min(count - filled, _end - _start);
            _buffer.AsSpan(_start, take).CopyTo(result.AsSpan(filled));
            _start += take;
            filled += take;
        }
        return result;
    }
}
