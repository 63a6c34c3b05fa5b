using System.Diagnostics;
using System.Text;

namespace Portcullis.Gateway.Tests.Infrastructure;

internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>The built <c>portcullis.dll</c> (copied beside the tests by the project reference to Portcullis.Cli), as a child process.</summary>
internal static class PortcullisCli
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Starts the CLI with redirected output; the caller reads it and ends the process.</summary>
    public static Process Start(params string[] args)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "portcullis.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["NO_COLOR"] = "1";
        var process = Process.Start(info)!;
        process.StandardInput.Close();
        return process;
    }

    /// <summary>Runs the CLI to its end (killed, by its own handle, after <see cref="Timeout"/>).</summary>
    public static async Task<CliResult> RunAsync(params string[] args)
    {
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new CliResult(process.ExitCode, await stdout.WaitAsync(Timeout), await stderr.WaitAsync(Timeout));
    }
}
