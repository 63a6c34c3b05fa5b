using System.Diagnostics;
using System.Text;

namespace Portcullis.Testing;

/// <summary>What a finished CLI run printed, and its exit code (deconstructs as <c>(code, stdout, stderr)</c>).</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>
/// The built <c>portcullis.dll</c> as a child process: copied beside the tests by a test project's reference to
/// Portcullis.Cli. Stdin is closed, output is UTF-8 without colour, every run has a time limit.
/// </summary>
public static class PortcullisCli
{
    /// <summary>How long one run may take before it is killed.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    /// <summary>The built CLI beside the tests.</summary>
    public static string Path { get; } = System.IO.Path.Combine(AppContext.BaseDirectory, "portcullis.dll");

    /// <summary>Starts the CLI with redirected output; the caller reads it and ends the process.</summary>
    public static Process Start(params string[] args) => StartIn(null, args);

    /// <summary>Starts the CLI in <paramref name="workingDirectory"/> (the test's own when null), as <see cref="Start"/>.</summary>
    public static Process StartIn(string? workingDirectory, params string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (!File.Exists(Path))
        {
            throw new FileNotFoundException($"the built CLI is not in {AppContext.BaseDirectory} (does the test project reference Portcullis.Cli?)", Path);
        }
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            WorkingDirectory = workingDirectory ?? "",
        };
        info.ArgumentList.Add(Path);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
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
