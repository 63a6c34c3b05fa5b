using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// "Never a stack trace": an exec stream reset mid-way through the gateway gives one log line, not YARP's warning
/// with the exception's frames.
/// </summary>
public sealed class ForwardingLogTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("text")]
    [InlineData("json")]
    public async Task A_reset_exec_stream_is_logged_as_one_line_without_a_stack_trace(string format)
    {
        using var folder = new ConfigFolder();
        // The upstream side of the tunnel is reset (as when the API server or kubelet drops the exec connection): the
        // gateway's read from it fails with "Connection reset by peer", which YARP reported with the whole stack trace.
        await using var upstream = new ScriptedUpstream(folder.Pki.IssueServer(), folder.Pki.Certificate,
            (request, _) => request.Values("Upgrade").Length > 0 ? UpstreamMove.UpgradeThenReset : UpstreamMove.AnswerAfterBody);
        folder.Write("upstream.kubeconfig", folder.Kubeconfig(server: upstream.Uri));
        folder.WriteConfig(admin: $"logFormat: {format}\n  drainTimeout: 2s");
        using var serve = PortcullisCli.Start("serve", "--config", folder.ConfigPath, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0");
        var output = new StringBuilder();
        try
        {
            var listening = await ReadUntilAsync(serve, output, l => l.Contains("listening on 127.0.0.1:", StringComparison.Ordinal));
            var port = int.Parse(System.Text.RegularExpressions.Regex.Match(listening, @"listening on 127\.0\.0\.1:(\d+)").Groups[1].Value,
                System.Globalization.CultureInfo.InvariantCulture);

            // A WebSocket exec through the gateway: the upstream answers 101 and waits for the tunnel's first line.
            using var tcp = new TcpClient();
            await tcp.ConnectAsync("127.0.0.1", port).WaitAsync(Timeout);
            var jane = folder.Pki.IssueClient("jane", "developers");
            var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: true);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && folder.Trusts(cert),
                ClientCertificates = [jane],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => jane,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            }).WaitAsync(Timeout);
            await tls.WriteAsync(Encoding.ASCII.GetBytes(
                "GET /api/v1/namespaces/dev/pods/p1/exec?command=sh&stdin=true HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"));
            var head = await ReadHeadAsync(tls);
            Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);

            // Mid-stream: the upstream reads this line, then resets its connection; the gateway then closes the client's.
            await tls.WriteAsync("hello\n"u8.ToArray());
            await tls.FlushAsync();
            var rest = await Record.ExceptionAsync(async () =>
            {
                var buffer = new byte[1024];
                while (await tls.ReadAsync(buffer).AsTask().WaitAsync(Timeout) > 0)
                {
                }
            });
            Assert.False(rest is TimeoutException, "the gateway kept the client's connection open");

            var line = await ReadUntilAsync(serve, output, l => l.Contains("Forwarding error Upgrade", StringComparison.Ordinal));
            Assert.Contains("Forwarding error UpgradeResponseDestination for GET /api/v1/namespaces/dev/pods/p1/exec: ", line, StringComparison.Ordinal);
            Assert.Contains("reset by peer", line, StringComparison.Ordinal);
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync().WaitAsync(Timeout);
        }
        output.Append(await serve.StandardOutput.ReadToEndAsync().WaitAsync(Timeout));
        output.Append(await serve.StandardError.ReadToEndAsync().WaitAsync(Timeout));

        var log = output.ToString();
        // A stack frame, on its own line (text) or after an escaped line break (json).
        Assert.DoesNotContain("   at ", log, StringComparison.Ordinal);
    }

    [Fact]
    public void An_exception_handed_to_a_logger_ends_the_line_as_type_and_message()
    {
        var written = new List<(string Message, Exception? Exception)>();
        using var provider = new OneLineExceptionLoggerProvider(new ListProvider(written));
        var logger = provider.CreateLogger("Microsoft.AspNetCore.Server.Kestrel");
        Exception thrown;
        try
        {
            throw new AggregateException(new IOException("Unable to read data from the transport connection:\nConnection reset by peer."));
        }
        catch (AggregateException ex)
        {
            thrown = ex;
        }

        logger.Log(LogLevel.Warning, new EventId(13), "c1", thrown, static (id, _) => $"Connection {id} failed");
        logger.Log(LogLevel.Warning, new EventId(13), "c2", null, static (id, _) => $"Plain {id}");

        Assert.Equal(("Connection c1 failed (IOException: Unable to read data from the transport connection: Connection reset by peer.)", (Exception?)null), written[0]);
        Assert.Equal(("Plain c2", (Exception?)null), written[1]);
        Assert.EndsWith("…", OneLineExceptionLoggerProvider.Summary(new InvalidOperationException(new string('x', 1000))), StringComparison.Ordinal);
    }

    private sealed class ListProvider(List<(string, Exception?)> written) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(written);

        public void Dispose()
        {
        }
    }

    private sealed class ListLogger(List<(string, Exception?)> written) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            written.Add((formatter(state, exception), exception));
    }

    private static async Task<string> ReadUntilAsync(Process serve, StringBuilder output, Func<string, bool> match)
    {
        using var deadline = new CancellationTokenSource(Timeout);
        while (true)
        {
            var line = await serve.StandardOutput.ReadLineAsync(deadline.Token);
            Assert.True(line is not null, "the gateway exited:\n" + output);
            output.AppendLine(line);
            if (match(line))
            {
                return line;
            }
        }
    }

    private static async Task<string> ReadHeadAsync(Stream stream)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await stream.ReadAsync(one).AsTask().WaitAsync(Timeout);
            if (n == 0)
            {
                break;
            }
            head.Append((char)one[0]);
        }
        return head.ToString();
    }
}
