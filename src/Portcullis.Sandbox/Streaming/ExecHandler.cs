using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Streaming;

/// <summary>
/// Serves pods/{name}/exec and pods/{name}/attach over WebSocket with the Kubernetes channel protocols:
/// each binary message starts with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize;
/// v5 adds 255 = close one stream). SPDY/3.1 upgrades are handed to <see cref="SpdyExec"/>.
/// </summary>
internal static class ExecHandler
{
    /// <summary>Subprotocols in the order the sandbox prefers them.</summary>
    public static readonly string[] Subprotocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

    private const byte StdinChannel = 0;
    private const byte StdoutChannel = 1;
    private const byte StatusChannel = 3;
    private const byte CloseChannel = 255;

    public static async Task HandleAsync(HttpContext context, JsonObject pod, bool attach, CancellationToken stopping)
    {
        var query = context.Request.Query;
        EchoContainer.ResolveContainer(pod, query["container"]);
        IReadOnlyList<string> command = attach ? [] : [.. query["command"].Where(c => c is not null).Select(c => c!)];
        if (!attach && command.Count == 0)
        {
            throw ApiException.BadRequest("you must specify at least 1 command");
        }
        var stdin = QueryFlag.IsTrue(query["stdin"]);

        if (context.WebSockets.IsWebSocketRequest)
        {
            var protocol = Subprotocols.FirstOrDefault(p => context.WebSockets.WebSocketRequestedProtocols.Contains(p));
            if (protocol is null)
            {
                throw ApiException.BadRequest("the sandbox speaks the WebSocket subprotocols " + string.Join(", ", Subprotocols) +
                    "; the client offered " + string.Join(", ", context.WebSockets.WebSocketRequestedProtocols));
            }
            using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = protocol });
            await RunWebSocketAsync(socket, protocol == Subprotocols[0], command, stdin, stopping);
            return;
        }
        if (string.Equals(context.Request.Headers.Upgrade, "SPDY/3.1", StringComparison.OrdinalIgnoreCase))
        {
            await SpdyExec.HandleAsync(context, command, stdin, stopping);
            return;
        }
        throw ApiException.BadRequest("exec and attach need a connection upgrade: WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) or SPDY/3.1");
    }

    /// <summary>How long a WebSocket exec or attach waits before the command runs (a container's start, see below).</summary>
    internal static readonly TimeSpan ContainerStart = TimeSpan.FromMilliseconds(100);

    private static async Task RunWebSocketAsync(WebSocket socket, bool v5, IReadOnlyList<string> command, bool stdin, CancellationToken stopping)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var input = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var output = new WebSocketOutput(socket);
        var receiving = ReceiveAsync(socket, v5, input.Writer, cancel.Token);
        int exitCode;
        try
        {
            // A real container takes a moment to start; client-go starts reading the WebSocket before it has registered
            // its streams, and discards ("Unknown stream id") output that arrives in between. The sandbox answers no
            // faster than a runtime would, so a quick command's output is not lost to that race.
            await Task.Delay(ContainerStart, cancel.Token);
            exitCode = await EchoContainer.RunAsync(command, stdin ? input.Reader : null, output, cancel.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            await cancel.CancelAsync();
            await receiving;
            return;
        }
        try
        {
            var status = Encoding.UTF8.GetBytes(EchoContainer.ExitStatus(command, exitCode).ToJsonString());
            await output.SendAsync(StatusChannel, status, cancel.Token);
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancel.Token);
            // Let the client answer the close; give up after a while so a silent client cannot hold the session.
            cancel.CancelAfter(TimeSpan.FromSeconds(10));
            await receiving;
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
        }
        finally
        {
            await cancel.CancelAsync();
            await receiving;
        }
    }

    /// <summary>Reads client messages: stdin data goes to the container; a v5 close of stdin or a close frame ends stdin.</summary>
    private static async Task ReceiveAsync(WebSocket socket, bool v5, ChannelWriter<byte[]> stdin, CancellationToken cancel)
    {
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, cancel);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }
                var data = message.ToArray();
                message.SetLength(0);
                if (data.Length == 0)
                {
                    continue;
                }
                if (data[0] == StdinChannel && data.Length > 1)
                {
                    stdin.TryWrite(data[1..]);
                }
                else if (v5 && data[0] == CloseChannel && data.Length > 1 && data[1] == StdinChannel)
                {
                    stdin.TryComplete();
                }
                // Channel 4 (terminal resize) has no meaning for the echo container.
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
        }
        finally
        {
            stdin.TryComplete();
        }
    }

    private sealed class WebSocketOutput(WebSocket socket) : IExecOutput, IDisposable
    {
        private readonly SemaphoreSlim _send = new(1, 1);

        public void Dispose() => _send.Dispose();

        public Task WriteStdoutAsync(ReadOnlyMemory<byte> data, CancellationToken cancel) => SendAsync(StdoutChannel, data, cancel);

        public async Task SendAsync(byte channel, ReadOnlyMemory<byte> data, CancellationToken cancel)
        {
            var frame = new byte[data.Length + 1];
            frame[0] = channel;
            data.CopyTo(frame.AsMemory(1));
            await _send.WaitAsync(cancel);
            try
            {
                await socket.SendAsync(frame, WebSocketMessageType.Binary, true, cancel);
            }
            finally
            {
                _send.Release();
            }
        }
    }
}
