using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Portcullis.EndToEnd.Tests.Infrastructure;

/// <summary>
/// The built CLI running <c>portcullis demo</c> as a child process on free loopback ports (port 0, read back from the
/// banner). Disposing stops it with SIGTERM (then kills it, by its own handle, if it does not exit) and deletes its folder.
/// </summary>
public sealed partial class DemoProcess : IAsyncDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(45);
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(20);

    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource<Match> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly bool _ownsDirectory;

    private DemoProcess(Process process, string directory, bool ownsDirectory)
    {
        Process = process;
        Directory = directory;
        _ownsDirectory = ownsDirectory;
    }

    public Process Process { get; }
    public string Directory { get; }
    public Uri Gateway { get; private set; } = null!;
    public Uri Admin { get; private set; } = null!;

    /// <summary>Webhook mode: the sandbox as the API server (the kubeconfigs' server); null in gateway mode.</summary>
    public Uri? ApiServer { get; private set; }

    /// <summary>Webhook mode: <c>portcullis webhook</c>'s HTTPS address; null in gateway mode.</summary>
    public Uri? Webhook { get; private set; }

    /// <summary>Everything the demo printed so far (stdout and stderr interleaved), for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _output.ToString();
            }
        }
    }

    public string Kubeconfig(string user) => Path.Combine(Directory, user + ".kubeconfig");
    public string Pki(string file) => Path.Combine(Directory, "pki", file);

    /// <summary>The built <c>portcullis.dll</c>: copied beside the tests by the project reference.</summary>
    public static string CliPath { get; } = FindCli();

    /// <summary>Starts the demo in <paramref name="directory"/> (a new temp folder when null) and waits until it is ready.</summary>
    public static Task<DemoProcess> StartAsync(string? directory = null) => StartAsync(directory, webhookMode: false);

    /// <summary>Starts <c>portcullis demo --mode webhook</c> (the sandbox as the API server, Portcullis as its webhooks).</summary>
    public static Task<DemoProcess> StartWebhookModeAsync(string? directory = null) => StartAsync(directory, webhookMode: true);

    private static async Task<DemoProcess> StartAsync(string? directory, bool webhookMode)
    {
        var owns = directory is null;
        directory ??= System.IO.Directory.CreateTempSubdirectory("portcullis-e2e-demo-").FullName;
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            WorkingDirectory = directory,
        };
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        if (EnvResetsSignals)
        {
            // A process started from a background job inherits "ignore SIGINT", and .NET then does not install its
            // handler; env puts the default disposition back before it execs dotnet (same pid), as an interactive shell would.
            info.FileName = "/usr/bin/env";
            info.ArgumentList.Add("--default-signal=INT");
            info.ArgumentList.Add(dotnet);
        }
        else
        {
            info.FileName = dotnet;
        }
        string[] args = webhookMode
            ? [CliPath, "demo", "--mode", "webhook", "--dir", directory, "--port", "0", "--admin-port", "0", "--webhook-port", "0"]
            : [CliPath, "demo", "--dir", directory, "--port", "0", "--admin-port", "0", "--sandbox-port", "0"];
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var demo = new DemoProcess(process, directory, owns);
        process.OutputDataReceived += (_, e) => demo.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => demo.OnLine(e.Data);
        process.Exited += (_, _) => demo._ready.TrySetException(new InvalidOperationException("the demo exited before it was ready"));
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var match = await demo._ready.Task.WaitAsync(StartTimeout);
            if (match.Groups["apiserver"].Success)
            {
                demo.ApiServer = new Uri(match.Groups["apiserver"].Value);
                demo.Webhook = new Uri(match.Groups["webhook"].Value);
            }
            else
            {
                demo.Gateway = new Uri(match.Groups["gateway"].Value);
            }
            demo.Admin = new Uri(match.Groups["admin"].Value);
            await demo.WaitUntilReadyzAsync();
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or HttpRequestException)
        {
            var output = demo.Output;
            await demo.DisposeAsync();
            throw new InvalidOperationException($"portcullis demo did not become ready within {StartTimeout}: {ex.Message}\n{output}", ex);
        }
        return demo;
    }

    /// <summary>Sends a signal with kill(1) and waits for the exit code.</summary>
    public async Task<int> SignalAndWaitAsync(string signal)
    {
        using (var kill = System.Diagnostics.Process.Start("kill", ["-" + signal, Process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync().WaitAsync(StopTimeout);
            Assert.Equal(0, kill.ExitCode);
        }
        await Process.WaitForExitAsync().WaitAsync(StopTimeout);
        // The exit event fires after the output pipes are drained, so everything the demo printed is in Output now.
        return Process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!Process.HasExited)
            {
                try
                {
                    await SignalAndWaitAsync("TERM");
                }
                catch (TimeoutException)
                {
                    Process.Kill(entireProcessTree: true);
                }
            }
        }
        catch (InvalidOperationException)
        {
            // never started
        }
        Process.Dispose();
        if (_ownsDirectory)
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lock)
        {
            _output.AppendLine(line);
        }
        var match = ReadyLine().Match(line);
        if (match.Success)
        {
            _ready.TrySetResult(match);
        }
    }

    private async Task WaitUntilReadyzAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            using (var response = await http.GetAsync(new Uri(Admin, "/readyz")))
            {
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("/readyz never answered 200");
            }
            await Task.Delay(100); // a poll interval with a deadline, not a synchronisation sleep
        }
    }

    private static string FindCli()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "portcullis.dll");
        if (File.Exists(beside) && File.Exists(Path.Combine(AppContext.BaseDirectory, "portcullis.runtimeconfig.json")))
        {
            return beside;
        }
        throw new FileNotFoundException($"the built CLI (portcullis.dll with its runtimeconfig.json) is not in {AppContext.BaseDirectory}");
    }

    private static bool EnvResetsSignals { get; } = Probe();

    private static bool Probe()
    {
        if (!File.Exists("/usr/bin/env"))
        {
            return false;
        }
        try
        {
            using var env = System.Diagnostics.Process.Start(new ProcessStartInfo("/usr/bin/env", ["--default-signal=INT", "true"])
            {
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;
            env.WaitForExit(10_000);
            return env.HasExited && env.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    [GeneratedRegex(@"^Portcullis demo ready(: gateway (?<gateway>https://\S+)| \(webhook mode\): API server (?<apiserver>https://\S+) webhook (?<webhook>https://\S+)) admin (?<admin>http://\S+)$")]
    private static partial Regex ReadyLine();
}
