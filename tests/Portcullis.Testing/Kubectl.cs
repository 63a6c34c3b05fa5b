using System.Diagnostics;
using System.Text;

namespace Portcullis.Testing;

/// <summary>A fact that runs only when kubectl is on PATH, and otherwise shows as skipped with the reason.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KubectlFactAttribute : FactAttribute
{
    public KubectlFactAttribute()
    {
        if (Kubectl.Path is null)
        {
            Skip = "kubectl is not on PATH; the real-client tests need it (CI has it)";
        }
    }
}

/// <summary>
/// The real kubectl with a given kubeconfig and a private discovery cache (a fresh one per instance), stdin closed
/// unless a test gives input, HOME pointed at a temp folder so nothing from ~/.kube is read. Disposing deletes that folder.
/// </summary>
public sealed class Kubectl : IDisposable
{
    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    private readonly string _kubeconfig;
    private readonly string _home;

    public Kubectl(string kubeconfig)
        : this(_ => kubeconfig)
    {
    }

    /// <summary>Runs with the kubeconfig <paramref name="writeKubeconfig"/> writes into the private HOME folder it is given (returning its path).</summary>
    public Kubectl(Func<string, string> writeKubeconfig)
    {
        ArgumentNullException.ThrowIfNull(writeKubeconfig);
        _home = Directory.CreateTempSubdirectory("portcullis-kubectl-").FullName;
        _kubeconfig = writeKubeconfig(_home);
    }

    /// <summary>The kubectl on PATH, or null.</summary>
    public static string? Path { get; } = FindOnPath("kubectl");

    /// <summary>Runs one command to completion with stdin closed (the equivalent of &lt;/dev/null).</summary>
    public Task<KubectlResult> RunAsync(params string[] args) => RunWithAsync(null, null, args);

    /// <summary>Runs one command to completion with extra environment variables.</summary>
    public Task<KubectlResult> RunWithAsync(IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        RunWithAsync(null, environment, args);

    /// <summary>Runs one command with <paramref name="stdin"/> as its input (then closed) and extra environment variables.</summary>
    public async Task<KubectlResult> RunWithAsync(string? stdin, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using var process = Start(args, stdin, environment);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl {string.Join(' ', Redacted(args))} did not finish in {CommandTimeout}");
        }
        return new KubectlResult(process.ExitCode, await stdout.WaitAsync(CommandTimeout), await stderr.WaitAsync(CommandTimeout));
    }

    /// <summary>The arguments with the value of <c>--token</c> replaced, for messages: a token never goes into one.</summary>
    private static IEnumerable<string> Redacted(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            yield return i > 0 && args[i - 1] == "--token" ? "<redacted>"
                : args[i].StartsWith("--token=", StringComparison.Ordinal) ? "--token=<redacted>"
                : args[i];
        }
    }

    /// <summary>Starts a long-running command (logs -f, get -w); disposing the result kills it.</summary>
    public RunningKubectl StartStreaming(params string[] args) => new(Start(args, null, null));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private Process Start(string[] args, string? stdin, IReadOnlyDictionary<string, string>? environment)
    {
        var info = new ProcessStartInfo(Path!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add("--kubeconfig");
        info.ArgumentList.Add(_kubeconfig);
        info.ArgumentList.Add("--cache-dir");
        info.ArgumentList.Add(System.IO.Path.Combine(_home, "cache"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["KUBECONFIG"] = _kubeconfig;
        info.Environment["HOME"] = _home;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }
        var process = Process.Start(info)!;
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
        }
        process.StandardInput.Close(); // then </dev/null: kubectl must never wait for a prompt
        return process;
    }

    private static string? FindOnPath(string name)
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}

public sealed record KubectlResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>A kubectl process left running; disposing kills it (and only it, by its own handle).</summary>
public sealed class RunningKubectl(Process process) : IDisposable
{
    public StreamReader Stdout => process.StandardOutput;

    /// <summary>As <see cref="ReadUntilAsync(Func{string, bool}, TimeSpan)"/>, until <paramref name="cancel"/> fires.</summary>
    public async Task<string> ReadUntilAsync(Func<string, bool> match, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(match);
        var seen = new StringBuilder();
        while (await process.StandardOutput.ReadLineAsync(cancel) is { } line)
        {
            seen.AppendLine(line);
            if (match(line))
            {
                return seen.ToString();
            }
        }
        var stderr = await process.StandardError.ReadToEndAsync(cancel);
        throw new InvalidOperationException($"kubectl output ended without the expected line.\nstdout:\n{seen}\nstderr:\n{stderr}");
    }

    /// <summary>Reads lines until one satisfies <paramref name="match"/>; fails with everything read if the output ends first.</summary>
    public async Task<string> ReadUntilAsync(Func<string, bool> match, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(match);
        using var cancel = new CancellationTokenSource(timeout);
        var seen = new StringBuilder();
        try
        {
            while (await process.StandardOutput.ReadLineAsync(cancel.Token) is { } line)
            {
                seen.AppendLine(line);
                if (match(line))
                {
                    return seen.ToString();
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"kubectl did not print the expected line within {timeout}. stdout so far:\n{seen}");
        }
        var stderr = await process.StandardError.ReadToEndAsync().WaitAsync(timeout);
        throw new InvalidOperationException($"kubectl output ended without the expected line.\nstdout:\n{seen}\nstderr:\n{stderr}");
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
        process.Dispose();
    }
}
