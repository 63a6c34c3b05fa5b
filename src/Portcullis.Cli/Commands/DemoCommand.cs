using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Portcullis.Cli.Demo;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;
using Portcullis.Sandbox;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis demo</c>: writes a throwaway PKI, kubeconfigs, RBAC manifests, an audit policy and a gateway configuration
/// into a folder, then runs the seeded sandbox API server and the gateway in front of it until Ctrl+C or SIGTERM.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Folder for the demo's files; made on the first run, reused after", DefaultValueFactory = _ => new DirectoryInfo("portcullis-demo") };
        var port = new Option<int>("--port") { Description = "Gateway HTTPS port on 127.0.0.1 (0 picks a free one)", DefaultValueFactory = _ => 6443 };
        var adminPort = new Option<int>("--admin-port") { Description = "Admin port (/healthz /readyz /metrics) on 127.0.0.1 (0 picks a free one)", DefaultValueFactory = _ => 9095 };
        var sandboxPort = new Option<int>("--sandbox-port") { Description = "Sandbox API server port on 127.0.0.1 (0 picks a free one)", DefaultValueFactory = _ => 0 };
        var command = new Command("demo",
            "Run the gateway in front of an in-memory sandbox API server, with a throwaway PKI, kubeconfigs for admin, jane, batch, " +
            "intruder, thief (a revoked certificate) and ci-bot, RBAC, API Priority and Fairness, EventRateLimit, rate limits, an audit policy and metrics — everything on loopback. Ctrl+C stops it.")
        { dir, port, adminPort, sandboxPort };
        command.Validators.Add(result =>
        {
            foreach (var option in new[] { port, adminPort, sandboxPort })
            {
                if (result.GetValue(option) is < 0 or > 65535)
                {
                    result.AddError($"{option.Name} must be a port number from 0 to 65535");
                }
            }
        });
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(dir)!.FullName, parse.GetValue(port),
            parse.GetValue(adminPort), parse.GetValue(sandboxPort), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string directory, int port, int adminPort, int sandboxPort, CancellationToken cancellationToken)
    {
        DemoFiles files;
        try
        {
            files = DemoFiles.Prepare(directory, port, adminPort);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or InvalidDataException)
        {
            await Console.Error.WriteLineAsync($"portcullis demo: cannot prepare {directory}: {ex.Message}");
            return 2;
        }

        // Ctrl+C (SIGINT) and SIGTERM both mean "stop both servers cleanly and exit 0", also while starting.
        using var stop = StopSignal.Register(cancellationToken);

        try
        {
            return await RunServersAsync(files, port, adminPort, sandboxPort, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsRequested)
        {
            await Console.Out.WriteLineAsync("portcullis demo: stopped before it was ready");
            return 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or InvalidDataException)
        {
            // A damaged file in the folder (a truncated key, a tokens.csv without ci-bot): say which, and how to start over.
            await Console.Error.WriteLineAsync($"portcullis demo: cannot use the files in {files.Directory}: {ex.Message} (delete the folder to start over)");
            return 2;
        }
    }

    private static async Task<int> RunServersAsync(DemoFiles files, int port, int adminPort, int sandboxPort, CancellationToken stop)
    {
        SandboxServer sandbox;
        try
        {
            sandbox = await SandboxServer.StartAsync(new SandboxOptions
            {
                ListenAddress = new IPEndPoint(IPAddress.Loopback, sandboxPort),
                ServerCertificate = files.Load("sandbox"),
                // Only the gateway's upstream certificate chains to this CA: users cannot go around the gateway.
                ClientCA = files.LoadCaBundle(DemoFiles.UpstreamCa),
                Seed = true,
            }, stop);
        }
        catch (IOException ex)
        {
            await Console.Error.WriteLineAsync($"portcullis demo: the sandbox cannot listen on 127.0.0.1:{sandboxPort}: {ex.Message} (try --sandbox-port 0)");
            return 1;
        }
        await using var runningSandbox = sandbox;
        files.WriteUpstreamKubeconfig(sandbox.Uri);

        GatewayHost gateway;
        try
        {
            gateway = GatewayHost.Create(files.ConfigPath, new GatewayHostOptions
            {
                ListenOverride = "127.0.0.1:" + port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                AdminOverride = "127.0.0.1:" + adminPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
        }
        catch (ConfigurationException ex)
        {
            ServeCommand.ReportErrors(files.ConfigPath, ex.Errors);
            await Console.Error.WriteLineAsync($"portcullis demo: fix {files.ConfigPath} or delete it to have the default written again");
            return 2;
        }
        await using (gateway)
        {
            try
            {
                await gateway.StartAsync(stop);
            }
            catch (GatewayStartException ex)
            {
                await Console.Error.WriteLineAsync($"portcullis demo: {ex.Message} (choose other ports with --port and --admin-port)");
                return 1;
            }
            files.WriteClientKubeconfigs(gateway.ListenUris[0]);
            await Console.Out.WriteAsync(Banner(files, gateway.ListenUris[0], gateway.AdminUri!, sandbox.Uri));

            try
            {
                await Task.Delay(Timeout.Infinite, stop);
            }
            catch (OperationCanceledException)
            {
            }
            await Console.Out.WriteLineAsync("portcullis demo: stopping");
            await gateway.StopAsync(CancellationToken.None);
        }
        await sandbox.StopAsync(CancellationToken.None);
        await Console.Out.WriteLineAsync("portcullis demo: stopped");
        return 0;
    }

    /// <summary>The "try this" list. It names files, never prints a key or the token.</summary>
    internal static string Banner(DemoFiles files, Uri gateway, Uri admin, Uri sandbox)
    {
        var dir = Display(files.Directory);
        var gw = gateway.GetLeftPart(UriPartial.Authority);
        var ad = admin.GetLeftPart(UriPartial.Authority);
        var created = files.Created.Count == 0 ? "reused" : $"created {files.Created.Count} files in";
        var text = new StringBuilder();
        text.AppendLine();
        text.AppendLine($"Portcullis demo ready: gateway {gw} admin {ad}");
        text.AppendLine($"  files      {dir}/ ({created} it; portcullis.yaml, pki/, rbac/, apf/, admission/, tokens.csv, revoked.yaml, *.kubeconfig)");
        text.AppendLine($"  gateway    {gw}  L1 allow 127.0.0.0/8 · L2 mTLS (pki/ca.crt) · L3 certificates + tokens.csv · L4 RBAC (rbac/)");
        text.AppendLine($"             L5 API Priority and Fairness (apf/) · EventRateLimit (admission/) · 20 requests/s per user");
        text.AppendLine($"  upstream   {sandbox.GetLeftPart(UriPartial.Authority)}  in-memory sandbox (not a cluster), only the gateway's certificate gets in");
        text.AppendLine($"  metrics    {ad}/metrics   (and /healthz /livez /readyz)");
        text.AppendLine($"  audit log  {dir}/audit.log   (policy {dir}/audit-policy.yaml)");
        text.AppendLine();
        text.AppendLine("Try this in another terminal:");
        text.AppendLine($"  kubectl --kubeconfig {dir}/jane.kubeconfig get pods -n dev        # allowed: group developers may use pods in dev");
        text.AppendLine($"  kubectl --kubeconfig {dir}/jane.kubeconfig get secrets -n prod    # 403: secrets is forbidden: User \"jane\" cannot list resource \"secrets\" ...");
        text.AppendLine($"  kubectl --kubeconfig {dir}/admin.kubeconfig get pods -A           # admin is in system:masters");
        text.AppendLine($"  kubectl --kubeconfig {dir}/ci-bot.kubeconfig get pods -A          # a token from tokens.csv; ci-bot reads pods everywhere");
        text.AppendLine($"  kubectl --kubeconfig {dir}/intruder.kubeconfig get pods           # refused in the TLS handshake: a certificate from another CA");
        text.AppendLine($"  kubectl --kubeconfig {dir}/thief.kubeconfig get pods              # refused in the TLS handshake: a stolen certificate on revoked.yaml");
        text.AppendLine($"  {TooManyRequestsCommand(dir)}   # 429 after 5: limit reached on type User for key batch");
        text.AppendLine($"  curl -k {gw}/api/v1/namespaces                      # 401 Unauthorized, kube-apiserver's Status body");
        text.AppendLine($"  curl {ad}/metrics | grep apiserver_request_total");
        text.AppendLine($"  {AutoBanCommand(gw, ad)}   # 127.0.0.2 is banned (L1 auto-ban); 127.0.0.1 never is");
        text.AppendLine();
        text.AppendLine("Ctrl+C stops the gateway and the sandbox.");
        return text.ToString();
    }

    /// <summary>The banner's auto-ban line: 25 bad tokens from 127.0.0.2 (over the demo's 20 failures), then the bans in force.</summary>
    internal static string AutoBanCommand(string gateway, string admin) =>
        $"for i in $(seq 25); do curl -sk --interface 127.0.0.2 -o /dev/null -H 'Authorization: Bearer not-a-token' {gateway}/api; done; portcullis bans list --admin {admin}";

    /// <summary>
    /// The banner's 429 line: batch creates the 10 Events of <c>events.yaml</c> one after the other; EventRateLimit's User
    /// limit (burst 5, 1 a second) lets the first 5 through and refuses the rest with kube-apiserver's TooManyRequests.
    /// EventRateLimit sends no <c>Retry-After</c>, so kubectl prints the 429 instead of retrying it.
    /// </summary>
    internal static string TooManyRequestsCommand(string dir) =>
        $"kubectl --kubeconfig {dir}/batch.kubeconfig create --validate=false -f {dir}/events.yaml";

    private static string Display(string directory)
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, directory);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? directory : "./" + relative;
    }
}
