using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Tests;

public sealed class StreamingTests
{
    [Fact]
    public async Task Exec_Over_WebSocket_v5_Echoes_And_Reports_Success()
    {
        await using var server = await TestSandbox.StartAsync();
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);
        using var socket = TestSandbox.WebSocket("v5.channel.k8s.io");

        await socket.ConnectAsync(Wss(server, "/api/v1/namespaces/dev/pods/web-1/exec?command=echo&command=hi&stdout=true&stderr=true"), timeout.Token);
        var frames = await ReadUntilCloseAsync(socket, timeout.Token);

        Assert.Equal("v5.channel.k8s.io", socket.SubProtocol);
        Assert.Equal("hi\n", Channel(frames, 1));
        Assert.Equal("Success", JsonNode.Parse(Channel(frames, 3))!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Exec_Over_WebSocket_Echoes_Stdin_Until_v5_Closes_It()
    {
        await using var server = await TestSandbox.StartAsync();
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);
        using var socket = TestSandbox.WebSocket("v5.channel.k8s.io");

        await socket.ConnectAsync(Wss(server, "/api/v1/namespaces/dev/pods/web-1/exec?command=sh&stdin=true&stdout=true"), timeout.Token);
        await socket.SendAsync(Frame(0, "ping\n"), WebSocketMessageType.Binary, true, timeout.Token);
        var first = await ReceiveAsync(socket, timeout.Token);
        var second = await ReceiveAsync(socket, timeout.Token);
        await socket.SendAsync(new byte[] { 255, 0 }, WebSocketMessageType.Binary, true, timeout.Token);
        var rest = await ReadUntilCloseAsync(socket, timeout.Token);

        Assert.Equal((1, "sh\n"), first);
        Assert.Equal((1, "ping\n"), second);
        Assert.Equal("Success", JsonNode.Parse(Channel(rest, 3))!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Exec_Over_WebSocket_v4_Reports_A_NonZero_Exit()
    {
        await using var server = await TestSandbox.StartAsync();
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);
        using var socket = TestSandbox.WebSocket("v4.channel.k8s.io");

        await socket.ConnectAsync(Wss(server, "/api/v1/namespaces/prod/pods/api-1/exec?command=exit&command=3&stdout=true"), timeout.Token);
        var frames = await ReadUntilCloseAsync(socket, timeout.Token);

        Assert.Equal("v4.channel.k8s.io", socket.SubProtocol);
        var status = JsonNode.Parse(Channel(frames, 3))!;
        Assert.Equal("NonZeroExitCode", status["reason"]!.GetValue<string>());
        Assert.Equal("3", status["details"]!["causes"]![0]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Attach_Over_WebSocket_Echoes_Stdin()
    {
        await using var server = await TestSandbox.StartAsync();
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);
        using var socket = TestSandbox.WebSocket("v5.channel.k8s.io");

        await socket.ConnectAsync(Wss(server, "/api/v1/namespaces/dev/pods/db-0/attach?stdin=true&stdout=true"), timeout.Token);
        await socket.SendAsync(Frame(0, "hello"), WebSocketMessageType.Binary, true, timeout.Token);
        var echoed = await ReceiveAsync(socket, timeout.Token);
        await socket.SendAsync(new byte[] { 255, 0 }, WebSocketMessageType.Binary, true, timeout.Token);
        var rest = await ReadUntilCloseAsync(socket, timeout.Token);

        Assert.Equal((1, "hello"), echoed);
        Assert.Equal("Success", JsonNode.Parse(Channel(rest, 3))!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Exec_On_A_Missing_Pod_Is_NotFound_Before_Upgrade()
    {
        await using var server = await TestSandbox.StartAsync();
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);
        using var socket = TestSandbox.WebSocket("v5.channel.k8s.io");

        var error = await Assert.ThrowsAsync<WebSocketException>(() =>
            socket.ConnectAsync(Wss(server, "/api/v1/namespaces/dev/pods/ghost/exec?command=ls"), timeout.Token));

        Assert.Contains("404", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logs_Answer_A_Few_Lines()
    {
        await using var server = await TestSandbox.StartAsync();
        using var client = TestSandbox.Client(server);

        var text = await client.GetStringAsync("/api/v1/namespaces/dev/pods/web-1/log").WaitAsync(TestSandbox.Timeout);
        var tail = await client.GetStringAsync("/api/v1/namespaces/dev/pods/web-1/log?tailLines=1").WaitAsync(TestSandbox.Timeout);

        Assert.Contains("pod dev/web-1", text, StringComparison.Ordinal);
        Assert.True(text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= 3);
        Assert.Equal("ready\n", tail);
    }

    [Theory]
    [InlineData("true")] // kubectl
    [InlineData("True")] // python3-kubernetes: kube-apiserver reads booleans with Go's strconv.ParseBool
    [InlineData("1")]
    public async Task Logs_Follow_Keeps_Streaming_Lines(string follow)
    {
        await using var server = await TestSandbox.StartAsync(logFollowInterval: TimeSpan.FromMilliseconds(20));
        using var client = TestSandbox.Client(server);
        using var timeout = new CancellationTokenSource(TestSandbox.Timeout);

        using var response = await client.GetAsync("/api/v1/namespaces/dev/pods/web-1/log?follow=" + follow,
            HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        var lines = new List<string>();
        while (lines.Count < 8)
        {
            lines.Add((await reader.ReadLineAsync(timeout.Token))!);
        }

        Assert.Equal("ready", lines[3]);
        Assert.Equal(["heartbeat 1", "heartbeat 2", "heartbeat 3", "heartbeat 4"], lines[4..]);
    }

    private static Uri Wss(SandboxServer server, string pathAndQuery) =>
        new($"wss://{server.Uri.Authority}{pathAndQuery}");

    private static byte[] Frame(byte channel, string text) => [channel, .. Encoding.UTF8.GetBytes(text)];

    private static async Task<(int Channel, string Text)> ReceiveAsync(ClientWebSocket socket, CancellationToken cancel)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cancel);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (-1, "");
            }
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                var data = message.ToArray();
                return (data[0], Encoding.UTF8.GetString(data, 1, data.Length - 1));
            }
        }
    }

    private static async Task<List<(int Channel, string Text)>> ReadUntilCloseAsync(ClientWebSocket socket, CancellationToken cancel)
    {
        var frames = new List<(int, string)>();
        while (true)
        {
            var frame = await ReceiveAsync(socket, cancel);
            if (frame.Channel < 0)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancel);
                return frames;
            }
            frames.Add(frame);
        }
    }

    private static string Channel(List<(int Channel, string Text)> frames, int channel) =>
        string.Concat(frames.Where(f => f.Channel == channel).Select(f => f.Text));
}
