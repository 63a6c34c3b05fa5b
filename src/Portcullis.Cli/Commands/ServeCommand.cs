using System.CommandLine;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;

namespace Portcullis.Cli;

/// <summary><c>portcullis serve --config FILE</c>: run the gateway until SIGINT or SIGTERM, then drain and exit 0.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The GatewayConfiguration file", Required = true };
        var listen = new Option<string?>("--listen") { Description = "Override every listener address (host:port)" };
        var admin = new Option<string?>("--admin") { Description = "Override admin.address (host:port)" };
        var command = new Command("serve", "Run the gateway in front of the kube-apiserver named by upstream.kubeconfig.") { config, listen, admin };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(config)!.FullName,
            new GatewayHostOptions { ListenOverride = parse.GetValue(listen), AdminOverride = parse.GetValue(admin) }, cancellationToken));
        return command;
    }

    internal static Task<int> RunAsync(string configPath, GatewayHostOptions options, CancellationToken cancellationToken) =>
        RunHostAsync(configPath, () => GatewayHost.Create(configPath, options), (h, ct) => h.StartAsync(ct), h => h.StopAsync(CancellationToken.None),
            cancellationToken);

    /// <summary>
    /// Creates a host (exit 2 on configuration errors), starts it (exit 1 when it cannot), waits for SIGINT/SIGTERM or
    /// <paramref name="cancellationToken"/>, then stops it and exits 0; <c>serve</c> and <c>webhook</c> share it.
    /// </summary>
    internal static async Task<int> RunHostAsync<THost>(string configPath, Func<THost> create, Func<THost, CancellationToken, Task> start,
        Func<THost, Task> stop, CancellationToken cancellationToken) where THost : IAsyncDisposable
    {
        THost host;
        try
        {
            host = create();
        }
        catch (ConfigurationException ex)
        {
            ReportErrors(configPath, ex.Errors);
            return 2;
        }
        // Registered before start so a signal during startup also ends in a clean stop.
        using var signal = StopSignal.Register(cancellationToken);
        await using (host)
        {
            try
            {
                await start(host, cancellationToken);
            }
            catch (GatewayStartException ex)
            {
                await Console.Error.WriteLineAsync($"portcullis: {ex.Message}");
                return 1;
            }
            await signal.WaitAsync();
            await stop(host);
        }
        return 0;
    }

    internal static void ReportErrors(string configPath, IReadOnlyList<ConfigError> errors)
    {
        Console.Error.WriteLine($"portcullis: {configPath}: {errors.Count} error(s):");
        foreach (var error in errors)
        {
            Console.Error.WriteLine("  " + error);
        }
    }
}
