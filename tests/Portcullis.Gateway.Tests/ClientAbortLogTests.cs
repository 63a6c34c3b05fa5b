using System.Diagnostics;
using System.Net;
using System.Text;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// A client that goes away mid-request is routine: `portcullis serve` logs it at Information (event 17), while an
/// upstream that cannot be reached is still a Warning (event 10).
/// </summary>
public sealed class ClientAbortLogTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_client_abort_is_logged_at_Information_and_an_unreachable_upstream_at_Warning()
    {
        using var folder = new ConfigFolder();
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upstream = await LoopbackServer.StartAsync(async context =>
        {
            if (context.Request.Path != "/api/v1/namespaces/dev/pods/p1")
            {
                return; // the gateway's readiness probe and anything else: 200 at once
            }
            // the upstream holds the client's request until the gateway cancels it
            arrived.TrySetResult();
            try
            {
                await Task.Delay(System.Threading.Timeout.InfiniteTimeSpan, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
            }
        }, new LoopbackTls(folder.Pki.IssueServer()));
        await using var _ = upstream;
        folder.Write("upstream.kubeconfig", folder.Kubeconfig(server: upstream.Url));
        folder.WriteConfig(admin: "drainTimeout: 2s");
        using var serve = PortcullisCli.Start("serve", "--config", folder.ConfigPath, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0");
        var output = new StringBuilder();
        try
        {
            var listening = await ReadUntilAsync(serve, output, l => l.Contains("listening on 127.0.0.1:", StringComparison.Ordinal));
            var port = int.Parse(System.Text.RegularExpressions.Regex.Match(listening, @"listening on 127\.0\.0\.1:(\d+)").Groups[1].Value,
                System.Globalization.CultureInfo.InvariantCulture);
            var jane = folder.Pki.IssueClient("jane", "developers");
            using var client = new HttpClient(new SocketsHttpHandler
            {
                SslOptions =
                {
                    ClientCertificates = [jane],
                    LocalCertificateSelectionCallback = (_, _, _, _, _) => jane,
                    RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && folder.Trusts(cert),
                },
            })
            { BaseAddress = new Uri($"https://127.0.0.1:{port}/") };

            // The client gives up while the upstream is still working on its request.
            using (var abandon = new CancellationTokenSource())
            {
                var send = client.GetAsync("/api/v1/namespaces/dev/pods/p1", abandon.Token);
                await arrived.Task.WaitAsync(Timeout);
                await abandon.CancelAsync();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send.WaitAsync(Timeout));
            }
            var gone = await ReadUntilAsync(serve, output, l => l.Contains("ForwardingHandler[", StringComparison.Ordinal));
            Assert.Contains(" info: Portcullis.Gateway.Forwarding.ForwardingHandler[17] Client went away (RequestCanceled) during GET /api/v1/namespaces/dev/pods/p1: ",
                gone, StringComparison.Ordinal);

            // The upstream goes away: connecting to it fails, which is the gateway's problem to report.
            await upstream.DisposeAsync();
            using (var response = await client.GetAsync("/api/v1/namespaces/dev/pods/p2").WaitAsync(Timeout))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            }
            var failed = await ReadUntilAsync(serve, output, l => l.Contains("ForwardingHandler[", StringComparison.Ordinal));
            Assert.Contains(" warn: Portcullis.Gateway.Forwarding.ForwardingHandler[10] Forwarding error Request for GET /api/v1/namespaces/dev/pods/p2: ",
                failed, StringComparison.Ordinal);
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync().WaitAsync(Timeout);
        }
        Assert.DoesNotContain("warn: Portcullis.Gateway.Forwarding.ForwardingHandler[10] Forwarding error RequestCanceled", output.ToString(), StringComparison.Ordinal);
    }

    private static async Task<string> ReadUntilAsync(Process serve, StringBuilder output, Func<string, bool> match)
    {
        using var deadline = new CancellationTokenSource(Timeout);
        while (true)
        {
            string? line;
            try
            {
                line = await serve.StandardOutput.ReadLineAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("no such line within the time; the gateway wrote:\n" + output);
            }
            Assert.True(line is not null, "the gateway exited:\n" + output);
            output.AppendLine(line);
            if (match(line))
            {
                return line;
            }
        }
    }
}
