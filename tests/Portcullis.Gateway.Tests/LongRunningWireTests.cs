using System.Diagnostics;
using System.Globalization;
using System.Net.Security;
using System.Text;
using System.Text.RegularExpressions;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Long-running answers (a watch, a followed log, an exec upgrade) at the byte level on both sides of the gateway: a
/// <see cref="StreamingUpstream"/> writes the upstream's exact head and holds the body, and the client is a hand-written
/// HTTP/1.1 exchange over TLS or the real <c>nghttp</c> (HTTP/2, every frame and header as received). client-go's watch
/// and <c>kubectl logs -f</c> act on the response headers before any event, so the head must reach the client while the
/// upstream still holds the body; hop-by-hop and framing fields must be the gateway's own on each side; an ambiguous
/// framing from the upstream is refused; and a stream whose credential is newly denied ends.
/// </summary>
public sealed partial class LongRunningWireTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private const string WatchEvent = """{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"dev"}}}""" + "\n";

    // What a front between the gateway and kube-apiserver may add: a Connection header nominating a field of its own,
    // Keep-Alive; and the chunked framing kube-apiserver uses for every streamed answer.
    private static string UpstreamHead(string contentType) =>
        "HTTP/1.1 200 OK\r\n" +
        "Audit-Id: 6f9f3a41-upstream\r\n" +
        "Cache-Control: no-cache, private\r\n" +
        $"Content-Type: {contentType}\r\n" +
        "Connection: keep-alive, X-Hop\r\n" +
        "Keep-Alive: timeout=90\r\n" +
        "X-Hop: only-for-the-next-hop\r\n" +
        "X-Kept: end-to-end\r\n" +
        "Transfer-Encoding: chunked\r\n" +
        "Date: Sat, 05 Dec 2026 18:00:00 GMT\r\n\r\n";

    private static string Chunk(string data) => $"{Encoding.UTF8.GetByteCount(data):x}\r\n{data}\r\n";

    public static TheoryData<string, string> LongRunningGets => new()
    {
        { "/api/v1/namespaces/dev/pods?watch=true&resourceVersion=4711&allowWatchBookmarks=true", "application/json" },
        { "/api/v1/namespaces/dev/pods/web-1/log?follow=true&container=app", "text/plain" },
    };

    private static async Task<(GatewayTestHost Gateway, StreamingUpstream Upstream)> StartAsync(string head, string modes = "[AlwaysAllow]", string? denyList = null)
    {
        var gw = await GatewayTestHost.StartAsync(rawUpstream: true, modes: modes, denyList: denyList).WaitAsync(Timeout);
        var upstream = new StreamingUpstream(gw.Pki.IssueServer("localhost"), gw.Pki.Certificate, head);
        gw.RetargetUpstream(upstream.Uri);
        return (gw, upstream);
    }

    [Theory]
    [MemberData(nameof(LongRunningGets))]
    public async Task An_HTTP_1_1_client_gets_the_whole_head_while_the_upstream_holds_the_body_then_the_chunks_intact(string target, string contentType)
    {
        var (gw, upstream) = await StartAsync(UpstreamHead(contentType));
        await using var _ = gw;
        await using var __ = upstream;
        await using var tls = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("jane", "developers")).WaitAsync(Timeout);
        var client = new ByteReader(tls);

        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: localhost\r\nAccept: {contentType}\r\nUser-Agent: kubectl/v1.32.4\r\n\r\n"));
        var answer = await upstream.Answers.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        var head = Encoding.Latin1.GetString(await ReadHeadAsync(client));

        // The head arrived while the upstream had written no body byte.
        Assert.Equal(0, answer.Sent);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", head, StringComparison.Ordinal);
        var fields = Fields(head);
        Assert.Equal([contentType], Values(fields, "Content-Type"));
        Assert.Equal(["chunked"], Values(fields, "Transfer-Encoding"));
        Assert.Empty(Values(fields, "Content-Length"));
        // Hop-by-hop fields are the upstream connection's, not the client's (RFC 9110 section 7.6.1); end-to-end ones pass.
        Assert.Empty(Values(fields, "X-Hop"));
        Assert.Empty(Values(fields, "Keep-Alive"));
        Assert.DoesNotContain(Values(fields, "Connection"), v => v.Contains("X-Hop", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(["end-to-end"], Values(fields, "X-Kept"));

        answer.Send(Chunk(WatchEvent));
        Assert.Equal(WatchEvent, await ReadChunkedAsync(client, Encoding.UTF8.GetByteCount(WatchEvent)));
        answer.Send(Chunk(WatchEvent) + "0\r\n\r\n");
        answer.End();
        Assert.Equal(WatchEvent, await ReadChunkedAsync(client, Encoding.UTF8.GetByteCount(WatchEvent)));
        // The last chunk: the stream ended cleanly.
        Assert.Equal("0\r\n\r\n", Encoding.ASCII.GetString(await client.ReadExactlyAsync(5, CancellationToken.None).WaitAsync(Timeout)));
    }

    [Theory]
    [MemberData(nameof(LongRunningGets))]
    public async Task An_HTTP_2_client_gets_the_head_without_connection_specific_fields_while_the_upstream_holds_the_body(string target, string contentType)
    {
        var (gw, upstream) = await StartAsync(UpstreamHead(contentType));
        await using var _ = gw;
        await using var __ = upstream;
        await using var nghttp = Nghttp.Start(new Uri(gw.Uri, target), "-H", "authorization: Bearer token-jane");

        var answer = await upstream.Answers.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        var response = await nghttp.ReadResponseHeadAsync();

        Assert.Equal(0, answer.Sent);
        Assert.Equal(["200"], Values(response.Fields, ":status"));
        Assert.Equal([contentType], Values(response.Fields, "content-type"));
        Assert.Equal(["end-to-end"], Values(response.Fields, "x-kept"));
        // RFC 9113 section 8.2.2: no connection-specific field in HTTP/2 (a client treats one as malformed).
        foreach (var name in new[] { "connection", "transfer-encoding", "keep-alive", "proxy-connection", "upgrade", "x-hop" })
        {
            Assert.Empty(Values(response.Fields, name));
        }

        answer.Send(Chunk(WatchEvent));
        await nghttp.ReadUntilAsync(text => text.Contains(WatchEvent, StringComparison.Ordinal));
        answer.Send("0\r\n\r\n");
        answer.End();
        await nghttp.ReadUntilAsync(text => Regex.IsMatch(text, $@"recv DATA frame <[^>]*stream_id={response.Stream}>\s*; END_STREAM"));
        Assert.Equal(0, await nghttp.WaitForExitAsync());
    }

    [Fact]
    public async Task An_exec_upgrade_answer_reaches_the_client_before_any_tunnel_byte()
    {
        const string Accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; // RFC 6455's example key's accept value
        var (gw, upstream) = await StartAsync(
            $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {Accept}\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n");
        await using var _ = gw;
        await using var __ = upstream;
        await using var tls = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("jane", "developers")).WaitAsync(Timeout);
        var client = new ByteReader(tls);

        await tls.WriteAsync(Encoding.ASCII.GetBytes(
            "GET /api/v1/namespaces/dev/pods/web-1/exec?command=sh&stdin=true&stdout=true&tty=true HTTP/1.1\r\nHost: localhost\r\n" +
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
            "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"));
        var answer = await upstream.Answers.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        var head = Encoding.Latin1.GetString(await ReadHeadAsync(client));

        Assert.Equal(0, answer.Sent);
        Assert.StartsWith("HTTP/1.1 101 Switching Protocols\r\n", head, StringComparison.Ordinal);
        var fields = Fields(head);
        Assert.Equal([Accept], Values(fields, "Sec-WebSocket-Accept"));
        Assert.Equal(["v5.channel.k8s.io"], Values(fields, "Sec-WebSocket-Protocol"));

        // The tunnel carries the upstream's bytes unchanged (a WebSocket text frame "$ " on the stdout channel).
        answer.Send("\x81\x03\x01$ ");
        Assert.Equal("\x81\x03\x01$ ", Encoding.Latin1.GetString(await client.ReadExactlyAsync(5, CancellationToken.None).WaitAsync(Timeout)));
    }

    public static TheoryData<string> AmbiguousTargets => new()
    {
        "/api/v1/namespaces/dev/pods?watch=true",
        "/api/v1/namespaces/dev/pods/web-1/log?follow=true",
        "/api/v1/namespaces/dev/pods",
    };

    // RFC 9112 section 6.3: an answer with both Content-Length and Transfer-Encoding "ought to be handled as an error"; it
    // is the shape of a response-splitting attempt, and kube-apiserver never sends one. The gateway refuses it whole.
    [Theory]
    [MemberData(nameof(AmbiguousTargets))]
    public async Task An_upstream_answer_with_both_Content_Length_and_chunked_framing_is_refused_with_502(string target)
    {
        var (gw, upstream) = await StartAsync(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n");
        await using var _ = gw;
        await using var __ = upstream;
        await using var tls = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("jane", "developers")).WaitAsync(Timeout);
        var client = new ByteReader(tls);

        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n"));
        var answer = await upstream.Answers.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        answer.Send(Chunk(WatchEvent) + "0\r\n\r\n");
        answer.End();
        var head = Encoding.Latin1.GetString(await ReadHeadAsync(client));

        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", head, StringComparison.Ordinal);
        var fields = Fields(head);
        Assert.Empty(Values(fields, "Transfer-Encoding"));
        var length = int.Parse(Assert.Single(Values(fields, "Content-Length")), CultureInfo.InvariantCulture);
        var body = Encoding.UTF8.GetString(await client.ReadExactlyAsync(length, CancellationToken.None).WaitAsync(Timeout));
        Assert.Contains("\"code\":502", body, StringComparison.Ordinal);
        Assert.Contains("both Content-Length and Transfer-Encoding", body, StringComparison.Ordinal);
        Assert.DoesNotContain("ADDED", body, StringComparison.Ordinal);
    }

    // docs/gateway.md (Hot reload): the open watches of a credential the new deny list matches are closed in the step that
    // puts the snapshot in force. Here at the byte level, for a bearer token listed by its digest: the client's stream
    // ends without the last chunk (client-go sees an unexpected EOF and re-lists, which is then refused), the upstream
    // watch the gateway ran with its own credentials is closed too, and the token's next request is refused.
    [Fact]
    public async Task A_token_deny_listed_mid_watch_ends_the_raw_HTTP_1_1_stream_and_the_upstream_watch()
    {
        var (gw, upstream) = await StartAsync(UpstreamHead("application/json"), modes: "[RBAC]", denyList: EmptyDenyList);
        await using var _ = gw;
        await using var __ = upstream;
        await using var tls = await RawHttps.ConnectAsync(gw, null).WaitAsync(Timeout);
        var client = new ByteReader(tls);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(
            "GET /api/v1/namespaces/dev/pods?watch=true HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer token-jane\r\n\r\n"));
        var answer = await upstream.Answers.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", Encoding.Latin1.GetString(await ReadHeadAsync(client)), StringComparison.Ordinal);
        answer.Send(Chunk(WatchEvent));
        Assert.Equal(WatchEvent, await ReadChunkedAsync(client, Encoding.UTF8.GetByteCount(WatchEvent)));

        var written = Stopwatch.GetTimestamp();
        DenyToken(gw, "token-jane");

        // Whatever comes now must be the end: no more chunks, no last chunk.
        var rest = await ReadToEndOrResetAsync(tls);
        var seen = Stopwatch.GetElapsedTime(written);
        Assert.Equal("", rest);
        await answer.Closed.Task.WaitAsync(Timeout);
        // About half a second for the file watcher plus the reload (docs/gateway.md); bounded loosely on a loaded machine.
        Assert.True(seen < Timeout, $"the stream ended {seen} after the deny list was written");
        await using var again = await RawHttps.ConnectAsync(gw, null).WaitAsync(Timeout);
        await again.WriteAsync(Encoding.ASCII.GetBytes(
            "GET /api/v1/namespaces/dev/pods?watch=true HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer token-jane\r\nConnection: close\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 403 Forbidden\r\n", await RawHttps.ReadToEndAsync(again), StringComparison.Ordinal);
        Assert.Single(upstream.Requests);
    }

    [Fact]
    public async Task A_token_deny_listed_mid_watch_resets_the_HTTP_2_stream_and_ends_the_upstream_watch()
    {
        var (gw, upstream) = await StartAsync(UpstreamHead("application/json"), modes: "[RBAC]", denyList: EmptyDenyList);
        await using var _ = gw;
        await using var __ = upstream;
        await using var nghttp = Nghttp.Start(new Uri(gw.Uri, "/api/v1/namespaces/dev/pods?watch=true"), "-H", "authorization: Bearer token-jane");
        var answer = await upstream.Answers.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        var response = await nghttp.ReadResponseHeadAsync();
        Assert.Equal(["200"], Values(response.Fields, ":status"));
        answer.Send(Chunk(WatchEvent));
        await nghttp.ReadUntilAsync(text => text.Contains(WatchEvent, StringComparison.Ordinal));

        DenyToken(gw, "token-jane");

        var output = await nghttp.ReadUntilAsync(text => text.Contains($"recv RST_STREAM frame <length=4, flags=0x00, stream_id={response.Stream}>", StringComparison.Ordinal));
        Assert.DoesNotContain("END_STREAM", output[output.IndexOf(WatchEvent, StringComparison.Ordinal)..], StringComparison.Ordinal);
        await answer.Closed.Task.WaitAsync(Timeout);
        await nghttp.WaitForExitAsync();
    }

    // The deny list names people, not only credentials: `user: root` must end root's watch when root watches as someone
    // else (kubectl --as). New requests are refused through the impersonation check, which runs as root; the open
    // streams were matched against the impersonated user only, so root's watch as bob stayed open.
    [Fact]
    public async Task A_user_deny_listed_mid_watch_loses_the_watch_it_opened_as_someone_else()
    {
        var (gw, upstream) = await StartAsync(UpstreamHead("application/json"), modes: "[RBAC]", denyList: EmptyDenyList);
        await using var _ = gw;
        await using var __ = upstream;
        await using var tls = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("root", "system:masters")).WaitAsync(Timeout);
        var client = new ByteReader(tls);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(
            "GET /api/v1/namespaces/dev/pods?watch=true HTTP/1.1\r\nHost: localhost\r\nImpersonate-User: bob\r\nImpersonate-Group: developers\r\n\r\n"));
        var answer = await upstream.Answers.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", Encoding.Latin1.GetString(await ReadHeadAsync(client)), StringComparison.Ordinal);
        Assert.Equal(["bob"], (await answer.Received.Task.WaitAsync(Timeout)).Values("Impersonate-User"));

        File.WriteAllText(Path.Combine(gw.Dir, "deny.yaml"),
            "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- user: root\n  reason: left the company\n");

        Assert.Equal("", await ReadToEndOrResetAsync(tls));
        await answer.Closed.Task.WaitAsync(Timeout);
        await using var again = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("root", "system:masters")).WaitAsync(Timeout);
        await again.WriteAsync(Encoding.ASCII.GetBytes(
            "GET /api/v1/namespaces/dev/pods?watch=true HTTP/1.1\r\nHost: localhost\r\nImpersonate-User: bob\r\nImpersonate-Group: developers\r\nConnection: close\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 403 Forbidden\r\n", await RawHttps.ReadToEndAsync(again), StringComparison.Ordinal);
        Assert.Single(upstream.Requests);
    }

    private const string EmptyDenyList = "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries: []\n";

    private static void DenyToken(GatewayTestHost gw, string token) =>
        File.WriteAllText(Path.Combine(gw.Dir, "deny.yaml"),
            $"apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- tokenSHA256: {Portcullis.Authentication.TokenFile.Digest(token)}\n  reason: leaked in CI logs\n");

    private static async Task<byte[]> ReadHeadAsync(ByteReader reader) =>
        await reader.ReadUntilAsync("\r\n\r\n"u8.ToArray(), 64 * 1024, CancellationToken.None).WaitAsync(Timeout)
        ?? throw new EndOfStreamException("the gateway closed the connection before a response head");

    /// <summary>Reads chunks (checking their framing) until <paramref name="length"/> data bytes are in; returns them.</summary>
    private static async Task<string> ReadChunkedAsync(ByteReader reader, int length)
    {
        using var data = new MemoryStream();
        while (data.Length < length)
        {
            var sizeLine = await reader.ReadUntilAsync("\r\n"u8.ToArray(), 1024, CancellationToken.None).WaitAsync(Timeout)
                ?? throw new EndOfStreamException("the stream ended before a chunk");
            var size = int.Parse(Encoding.ASCII.GetString(sizeLine, 0, sizeLine.Length - 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            Assert.True(size > 0, "the stream ended (last chunk) before the data");
            data.Write(await reader.ReadExactlyAsync(size, CancellationToken.None).WaitAsync(Timeout));
            Assert.Equal("\r\n", Encoding.ASCII.GetString(await reader.ReadExactlyAsync(2, CancellationToken.None).WaitAsync(Timeout)));
        }
        return Encoding.UTF8.GetString(data.ToArray());
    }

    /// <summary>Everything the client still receives until the connection ends (a close or a reset).</summary>
    private static async Task<string> ReadToEndOrResetAsync(SslStream tls)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await tls.ReadAsync(buffer).AsTask().WaitAsync(Timeout)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
            // a reset: the end as well
        }
        return Encoding.Latin1.GetString(received.ToArray());
    }

    private static List<(string Name, string Value)> Fields(string head) =>
        [.. head.Split("\r\n").Skip(1).Where(l => l.Length > 0).Select(l => (l[..l.IndexOf(':', StringComparison.Ordinal)], l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()))];

    private static string[] Values(IEnumerable<(string Name, string Value)> fields, string name) =>
        [.. fields.Where(f => f.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(f => f.Value)];

    /// <summary>
    /// The real <c>nghttp</c> (nghttp2-client) in verbose mode: every frame and every decoded header field as it arrives,
    /// and the response body as received, read from its output as it comes (line-buffered through <c>stdbuf</c>).
    /// </summary>
    private sealed partial class Nghttp : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly char[] _buffer = new char[4096];

        private Nghttp(Process process) => _process = process;

        public static Nghttp Start(Uri uri, params string[] args)
        {
            var nghttp = ExternalTool.Find("nghttp") ?? throw new InvalidOperationException("nghttp is not installed (apt-get install nghttp2-client; .ci/run installs it)");
            var info = new ProcessStartInfo(ExternalTool.Find("stdbuf") ?? throw new InvalidOperationException("stdbuf (coreutils) is not on PATH"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
                StandardOutputEncoding = Encoding.UTF8,
            };
            foreach (var arg in new[] { "-oL", nghttp, "-v", "--no-dep" }.Concat(args).Append(uri.ToString()))
            {
                info.ArgumentList.Add(arg);
            }
            var process = Process.Start(info)!;
            process.StandardInput.Close();
            return new Nghttp(process);
        }

        /// <summary>Reads output until <paramref name="match"/> holds for all of it so far; returns all of it.</summary>
        public async Task<string> ReadUntilAsync(Func<string, bool> match)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(Timeout.TotalSeconds * Stopwatch.Frequency);
            while (!match(_output.ToString()))
            {
                var left = TimeSpan.FromSeconds(Math.Max(0, (deadline - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency));
                int n;
                try
                {
                    n = await _process.StandardOutput.ReadAsync(_buffer).AsTask().WaitAsync(left);
                }
                catch (TimeoutException)
                {
                    throw new TimeoutException($"nghttp did not print what was expected within {Timeout}; it printed:\n{_output}");
                }
                if (n == 0)
                {
                    throw new EndOfStreamException($"nghttp ended before printing what was expected; it printed:\n{_output}\nstderr:\n{await _process.StandardError.ReadToEndAsync().WaitAsync(Timeout)}");
                }
                _output.Append(_buffer, 0, n);
            }
            return _output.ToString();
        }

        /// <summary>The response's stream id and header fields (pseudo-fields included), once its HEADERS frame is complete.</summary>
        public async Task<(int Stream, List<(string Name, string Value)> Fields)> ReadResponseHeadAsync()
        {
            var text = await ReadUntilAsync(t => StatusLine().Match(t) is { Success: true } m && t.Contains($"recv HEADERS frame <", StringComparison.Ordinal)
                && Regex.IsMatch(t, $@"recv HEADERS frame <[^>]*stream_id={m.Groups[1].Value}>"));
            var stream = int.Parse(StatusLine().Match(text).Groups[1].Value, CultureInfo.InvariantCulture);
            var fields = FieldLine().Matches(text).Where(m => m.Groups[1].Value == stream.ToString(CultureInfo.InvariantCulture))
                .Select(m => (m.Groups[2].Value, m.Groups[3].Value.TrimEnd('\r'))).ToList();
            return (stream, fields);
        }

        public async Task<int> WaitForExitAsync()
        {
            await _process.WaitForExitAsync().WaitAsync(Timeout);
            return _process.ExitCode;
        }

        public ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            _process.Dispose();
            return ValueTask.CompletedTask;
        }

        [GeneratedRegex(@"recv \(stream_id=(\d+)\) :status: ")]
        private static partial Regex StatusLine();

        [GeneratedRegex(@"recv \(stream_id=(\d+)\) (:?[^:\s]+): (.*)$", RegexOptions.Multiline)]
        private static partial Regex FieldLine();
    }
}
