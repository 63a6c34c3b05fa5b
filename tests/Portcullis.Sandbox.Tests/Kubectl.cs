using System.Diagnostics;
using System.Text;

namespace Portcullis.Sandbox.Tests;

/// <summary>A fact that runs only when kubectl is on PATH, and otherwise shows as skipped with the reason.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KubectlFactAttribute : FactAttribute
{
    public KubectlFactAttribute()
    {
        if (Kubectl.Path is null)
        {
            Skip = "kubectl is not on PATH; the real-client tests need it";
        }
    }
}

/// <summary>Runs the real kubectl against a sandbox with a private kubeconfig and discovery cache.</summary>
public sealed class Kubectl : IDisposable
{
    private readonly string _directory;
    private readonly string _kubeconfig;
    private readonly string _cache;

    public Kubectl(SandboxServer server)
    {
        ArgumentNullException.ThrowIfNull(server);
        _directory = Directory.CreateTempSubdirectory("portcullis-kubectl-").FullName;
        var (ca, cert, key) = TestPki.WritePem(_directory, TestPki.Shared.Ca, TestPki.Shared.Client);
        _kubeconfig = System.IO.Path.Combine(_directory, "kubeconfig");
        _cache = System.IO.Path.Combine(_directory, "cache");
        File.WriteAllText(_kubeconfig, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: sandbox
              cluster:
                server: {server.Uri.ToString().TrimEnd('/')}
                certificate-authority: {ca}
            users:
            - name: alice
              user:
                client-certificate: {cert}
                client-key: {key}
            contexts:
            - name: sandbox
              context:
                cluster: sandbox
                user: alice
                namespace: dev
            current-context: sandbox
            """);
    }

    /// <summary>The kubectl on PATH, or null.</summary>
    public static string? Path { get; } = FindOnPath("kubectl");

    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs one command to completion with stdin closed (the equivalent of &lt;/dev/null).</summary>
    public Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(params string[] args) =>
        RunWithAsync(null, null, args);

    /// <summary>Runs one command with <paramref name="stdin"/> as its input (then closed) and extra environment variables.</summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> RunWithAsync(string? stdin,
        IReadOnlyDictionary<string, string>? environment, params string[] args)
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
            throw new TimeoutException($"kubectl {string.Join(' ', args)} did not finish in {CommandTimeout}");
        }
        return (process.ExitCode, await stdout.WaitAsync(CommandTimeout), await stderr.WaitAsync(CommandTimeout));
    }

    /// <summary>Starts a long-running command (logs -f, get -w); the caller reads its output and disposes it, which kills it.</summary>
    public RunningKubectl StartStreaming(params string[] args) => new(Start(args, null, null));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
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
        info.ArgumentList.Add(_cache);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["KUBECONFIG"] = _kubeconfig;
        info.Environment["HOME"] = _directory;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }
        var process = Process.Start(info)!;
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
        }
        process.StandardInput.Close();
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

/// <summary>A kubectl process left running; disposing kills it (and only it, by its own handle).</summary>
public sealed class RunningKubectl(Process process) : IDisposable
{
    public StreamReader Stdout => process.StandardOutput;

    /// <summary>Reads lines until one satisfies <paramref name="match"/>; fails with everything read if the output ends first.</summary>
    public async Task<string> ReadUntilAsync(Func<string, bool> match, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(match);
        var seen = new StringBuilder();
        while (await Stdout.ReadLineAsync(cancel) is { } line)
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

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }
        process.Dispose();
    }
}
