using System.Net;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portcullis.Sandbox.Storage;
using Portcullis.Sandbox.Streaming.Spdy;

namespace Portcullis.Sandbox.Streaming;

/// <summary>
/// exec and attach over SPDY/3.1 with the v4.channel.k8s.io stream protocol: the client opens one SPDY
/// stream per purpose (header streamType = error, stdin, stdout, stderr, resize); the status goes on the
/// error stream as JSON when the command ends.
/// </summary>
internal static class SpdyExec
{
    public const string Protocol = "v4.channel.k8s.io";

    private static readonly TimeSpan StreamWait = TimeSpan.FromSeconds(30);

    public static async Task HandleAsync(HttpContext context, IReadOnlyList<string> command, bool stdin, CancellationToken stopping)
    {
        var offered = context.Request.Headers["X-Stream-Protocol-Version"]
            .SelectMany(v => (v ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        if (!offered.Contains(Protocol))
        {
            throw new ApiException(HttpStatusCode.Forbidden, "Forbidden",
                $"unable to upgrade: the sandbox speaks only {Protocol} over SPDY/3.1; the client offered {string.Join(", ", offered)}");
        }
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is not { IsUpgradableRequest: true })
        {
            throw ApiException.BadRequest("SPDY/3.1 needs an HTTP/1.1 upgrade request (Connection: Upgrade, no body)");
        }
        var query = context.Request.Query;
        var wantStdout = QueryFlag.IsTrue(query["stdout"]);
        var wantStderr = QueryFlag.IsTrue(query["stderr"]);
        var tty = QueryFlag.IsTrue(query["tty"]);

        context.Response.Headers.Upgrade = "SPDY/3.1";
        context.Response.Headers["X-Stream-Protocol-Version"] = Protocol;
        var transport = await upgrade.UpgradeAsync();
        await using var connection = new SpdyConnection(transport);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);

        var expected = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "error" };
        if (stdin)
        {
            expected.Add("stdin");
        }
        if (wantStdout)
        {
            expected.Add("stdout");
        }
        if (wantStderr && !tty)
        {
            expected.Add("stderr");
        }
        var session = new Session(connection, expected);
        var reading = session.ReadLoopAsync(cancel.Token);
        try
        {
            await session.AllStreamsOpen.WaitAsync(StreamWait, cancel.Token);
            var exitCode = await EchoContainer.RunAsync(command, stdin ? session.Stdin : null, session, cancel.Token);
            var status = Encoding.UTF8.GetBytes(EchoContainer.ExitStatus(command, exitCode).ToJsonString());
            await connection.SendDataAsync(session.StreamId("error"), status, fin: true, cancel.Token);
            foreach (var name in (string[])["stdout", "stderr"])
            {
                if (session.HasStream(name))
                {
                    await connection.SendDataAsync(session.StreamId(name), ReadOnlyMemory<byte>.Empty, fin: true, cancel.Token);
                }
            }
            // The client closes the connection once it has read everything; do not wait forever for it.
            cancel.CancelAfter(TimeSpan.FromSeconds(10));
            await reading;
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or IOException)
        {
        }
        finally
        {
            await cancel.CancelAsync();
            await reading;
        }
    }

    private sealed class Session(SpdyConnection connection, HashSet<string> expected) : IExecOutput
    {
        private readonly Dictionary<string, int> _streams = new(StringComparer.OrdinalIgnoreCase);
        private readonly TaskCompletionSource _allOpen = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Channel<byte[]> _stdin = Channel.CreateUnbounded<byte[]>();

        public Task AllStreamsOpen => _allOpen.Task;

        public ChannelReader<byte[]> Stdin => _stdin.Reader;

        public bool HasStream(string name)
        {
            lock (_streams)
            {
                return _streams.ContainsKey(name);
            }
        }

        public int StreamId(string name)
        {
            lock (_streams)
            {
                return _streams[name];
            }
        }

        public Task WriteStdoutAsync(ReadOnlyMemory<byte> data, CancellationToken cancel) =>
            HasStream("stdout") ? connection.SendDataAsync(StreamId("stdout"), data, fin: false, cancel) : Task.CompletedTask;

        public async Task ReadLoopAsync(CancellationToken cancel)
        {
            try
            {
                while (await connection.ReadFrameAsync(cancel) is { } frame)
                {
                    switch (frame)
                    {
                        case SynStreamFrame syn:
                            await connection.SendSynReplyAsync(syn.StreamId, cancel);
                            lock (_streams)
                            {
                                if (syn.Headers.TryGetValue("streamtype", out var type))
                                {
                                    _streams[type] = syn.StreamId;
                                }
                                if (expected.All(_streams.ContainsKey))
                                {
                                    _allOpen.TrySetResult();
                                }
                            }
                            break;
                        case DataFrame data when IsStream("stdin", data.StreamId):
                            if (data.Data.Length > 0)
                            {
                                _stdin.Writer.TryWrite(data.Data);
                            }
                            if (data.Fin)
                            {
                                _stdin.Writer.TryComplete();
                            }
                            break;
                        case ResetFrame reset when IsStream("stdin", reset.StreamId):
                            _stdin.Writer.TryComplete();
                            break;
                        case GoAwayFrame:
                            return;
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidDataException or ArgumentOutOfRangeException)
            {
            }
            finally
            {
                _stdin.Writer.TryComplete();
                _allOpen.TrySetCanceled(CancellationToken.None);
            }
        }

        private bool IsStream(string name, int id)
        {
            lock (_streams)
            {
                return _streams.TryGetValue(name, out var known) && known == id;
            }
        }
    }
}
