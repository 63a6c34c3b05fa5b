using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Streaming;

/// <summary>The output side of an exec or attach session, whatever the transport.</summary>
internal interface IExecOutput
{
    Task WriteStdoutAsync(ReadOnlyMemory<byte> data, CancellationToken cancel);
}

/// <summary>
/// The sandbox's pretend container. <c>echo ARGS</c> prints ARGS; <c>cat</c> copies stdin to stdout;
/// <c>false</c> exits 1 and <c>exit N</c> exits N; any other command prints its command line and then
/// copies stdin to stdout. Attach (no command) copies stdin to stdout.
/// </summary>
internal static class EchoContainer
{
    public static async Task<int> RunAsync(IReadOnlyList<string> command, ChannelReader<byte[]>? stdin, IExecOutput output, CancellationToken cancel)
    {
        var program = command.Count > 0 ? command[0] : null;
        switch (program)
        {
            case "echo":
                await output.WriteStdoutAsync(Encoding.UTF8.GetBytes(string.Join(' ', command.Skip(1)) + "\n"), cancel);
                return 0;
            case "false":
                return 1;
            case "true":
                return 0;
            case "exit":
                return command.Count > 1 && int.TryParse(command[1], NumberStyles.None, CultureInfo.InvariantCulture, out var code) ? code : 0;
            case null:
            case "cat":
                break;
            default:
                await output.WriteStdoutAsync(Encoding.UTF8.GetBytes(string.Join(' ', command) + "\n"), cancel);
                break;
        }
        if (stdin is not null)
        {
            await foreach (var chunk in stdin.ReadAllAsync(cancel))
            {
                await output.WriteStdoutAsync(chunk, cancel);
            }
        }
        return 0;
    }

    /// <summary>The container named in the request, or the pod's first; 400 when the pod has no such container.</summary>
    public static string ResolveContainer(JsonObject pod, string? requested)
    {
        var names = (pod["spec"]?["containers"] as JsonArray ?? [])
            .Select(c => c?["name"]?.GetValue<string>())
            .Where(n => n is not null)
            .Select(n => n!)
            .ToList();
        var podName = pod["metadata"]?["name"]?.GetValue<string>() ?? "";
        if (string.IsNullOrEmpty(requested))
        {
            return names.FirstOrDefault() ?? throw ApiException.BadRequest($"pod {podName} has no containers");
        }
        return names.Contains(requested)
            ? requested
            : throw ApiException.BadRequest($"container {requested} is not valid for pod {podName}");
    }

    /// <summary>The status sent on the error channel when the session ends.</summary>
    public static JsonObject ExitStatus(IReadOnlyList<string> command, int exitCode) =>
        exitCode == 0
            ? new JsonObject { ["metadata"] = new JsonObject(), ["status"] = "Success" }
            : new JsonObject
            {
                ["metadata"] = new JsonObject(),
                ["status"] = "Failure",
                ["message"] = $"command terminated with non-zero exit code: error executing command [{string.Join(' ', command)}], exit code {exitCode}",
                ["reason"] = "NonZeroExitCode",
                ["details"] = new JsonObject
                {
                    ["causes"] = new JsonArray(new JsonObject
                    {
                        ["reason"] = "ExitCode",
                        ["message"] = exitCode.ToString(CultureInfo.InvariantCulture),
                    }),
                },
            };
}
