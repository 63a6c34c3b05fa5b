using System.Diagnostics;
using System.Text;

namespace Portcullis.Testing;

/// <summary>
/// A command-line tool the tests drive as a user would (<c>openssl</c>, <c>curl</c>, <c>bash</c>): found on PATH, run
/// with stdin closed (or fed <c>input</c>), killed by its own handle after a time limit, its output captured as UTF-8.
/// </summary>
public static class ExternalTool
{
    /// <summary>How long one run may take before it is killed.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>The full path of <paramref name="name"/> on PATH, or null.</summary>
    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => System.IO.Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    /// <summary>Runs <paramref name="file"/> to its end; <paramref name="environment"/> adds or replaces variables.</summary>
    public static async Task<CliResult> RunAsync(string file, IEnumerable<string> args, string? input = null,
        IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
        }
        process.StandardInput.Close();
        var limit = timeout ?? Timeout;
        try
        {
            await process.WaitForExitAsync().WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', info.ArgumentList)} did not finish within {limit}");
        }
        return new CliResult(process.ExitCode, await stdout.WaitAsync(limit), await stderr.WaitAsync(limit));
    }
}
