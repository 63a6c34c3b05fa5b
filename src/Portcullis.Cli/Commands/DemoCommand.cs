using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Portcullis.Authorization;
using Portcullis.Cli.Demo;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;
using Portcullis.Sandbox;
using Portcullis.Sandbox.Security;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis demo</c>: writes a throwaway PKI, kubeconfigs, RBAC manifests, an audit policy and a gateway configuration
/// into a folder, then runs the seeded sandbox API server and the gateway in front of it until Ctrl+C or SIGTERM. With
/// <c>--mode webhook</c> the sandbox is the API server instead, asking <c>portcullis webhook</c> about tokens and access.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Folder for the demo's files; made on the first run, reused after", DefaultValueFactory = _ => new DirectoryInfo("portcullis-demo") };
        var mode = new Option<string>("--mode") { Description = "gateway: Portcullis in front of the sandbox; webhook: the sandbox as the API server, asking portcullis webhook (TokenReview, SubjectAccessReview)", DefaultValueFactory = _ => "gateway" };
        mode.AcceptOnlyFromAmong("gateway", "webhook");
        var port = new Option<int>("--port") { Description = "HTTPS port on 127.0.0.1 kubectl talks to: the gateway, or in webhook mode the API server (0 picks a free one)", DefaultValueFactory = _ => 6443 };
        var adminPort = new Option<int>("--admin-port") { Description = "Admin port (/healthz /readyz /metrics) on 127.0.0.1 (0 picks a free one)", DefaultValueFactory = _ => 9095 };
        var sandboxPort = new Option<int>("--sandbox-port") { Description = "Sandbox API server port on 127.0.0.1 behind the gateway (0 picks a free one; gateway mode only)", DefaultValueFactory = _ => 0 };
        var webhookPort = new Option<int>("--webhook-port") { Description = "portcullis webhook's HTTPS port on 127.0.0.1 (0 picks a free one; webhook mode only)", DefaultValueFactory = _ => 8443 };
        var command = new Command("demo",
            "Run the gateway in front of an in-memory sandbox API server, with a throwaway PKI, kubeconfigs for admin, jane, batch, " +
            "intruder, thief (a revoked certificate) and ci-bot, RBAC, API Priority and Fairness, EventRateLimit, rate limits, an audit policy and metrics — everything on loopback. " +
            "With --mode webhook the sandbox is the API server and Portcullis its TokenReview and SubjectAccessReview webhook. Ctrl+C stops it.")
        { dir, mode, port, adminPort, sandboxPort, webhookPort };
        command.Validators.Add(result =>
        {
            foreach (var option in new[] { port, adminPort, sandboxPort, webhookPort })
            {
                if (result.GetValue(option) is < 0 or > 65535)
                {
                    result.AddError($"{option.Name} must be a port number from 0 to 65535");
                }
            }
            // A port flag the chosen mode does not use is refused rather than ignored.
            var webhook = result.GetValue(mode) == "webhook";
            if (webhook && result.GetResult(sandboxPort) is { Implicit: false })
            {
                result.AddError("--sandbox-port is not used with --mode webhook: the sandbox is the API server there, on --port");
            }
            if (!webhook && result.GetResult(webhookPort) is { Implicit: false })
            {
                result.AddError("--webhook-port applies to --mode webhook only");
            }
        });
        command.SetAction((parse, cancellationToken) => RunAsync(new DemoSettings(parse.GetValue(dir)!.FullName, parse.GetValue(mode) == "webhook",
            parse.GetValue(port), parse.GetValue(adminPort), parse.GetValue(sandboxPort), parse.GetValue(webhookPort)), cancellationToken));
        return command;
    }

    /// <summary>What <c>portcullis demo</c> was asked for.</summary>
    private sealed record DemoSettings(string Directory, bool WebhookMode, int Port, int AdminPort, int SandboxPort, int WebhookPort);

    private static async Task<int> RunAsync(DemoSettings settings, CancellationToken cancellationToken)
    {
        DemoFiles files;
        try
        {
            files = DemoFiles.Prepare(settings.Directory, settings.Port, settings.AdminPort);
            if (settings.WebhookMode)
            {
                files.PrepareWebhookMode(settings.WebhookPort, settings.AdminPort);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or InvalidDataException)
        {
            await Console.Error.WriteLineAsync($"portcullis demo: cannot prepare {settings.Directory}: {ex.Message}");
            return 2;
        }

        // Ctrl+C (SIGINT) and SIGTERM both mean "stop both servers cleanly and exit 0", also while starting.
        using var stop = StopSignal.Register(cancellationToken);

        try
        {
            return settings.WebhookMode
                ? await RunWebhookModeAsync(files, settings, stop.Token)
                : await RunServersAsync(files, settings.Port, settings.AdminPort, settings.SandboxPort, stop.Token);
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

    /// <summary>
    /// Webhook mode: <c>portcullis webhook</c> first (its port goes into the wiring), then the API server's wiring written
    /// by <see cref="WebhookWiring"/>, then the sandbox as the API server reading that wiring; stopped in the reverse order.
    /// </summary>
    private static async Task<int> RunWebhookModeAsync(DemoFiles files, DemoSettings settings, CancellationToken stop)
    {
        WebhookHost webhook;
        try
        {
            webhook = WebhookHost.Create(files.WebhookConfigPath, new GatewayHostOptions
            {
                ListenOverride = "127.0.0.1:" + settings.WebhookPort.ToString(CultureInfo.InvariantCulture),
                AdminOverride = "127.0.0.1:" + settings.AdminPort.ToString(CultureInfo.InvariantCulture),
            });
        }
        catch (ConfigurationException ex)
        {
            ServeCommand.ReportErrors(files.WebhookConfigPath, ex.Errors);
            await Console.Error.WriteLineAsync($"portcullis demo: fix {files.WebhookConfigPath} or delete it to have the default written again");
            return 2;
        }
        await using (webhook)
        {
            try
            {
                await webhook.StartAsync(stop);
            }
            catch (GatewayStartException ex)
            {
                await Console.Error.WriteLineAsync($"portcullis demo: {ex.Message} (choose other ports with --webhook-port and --admin-port)");
                return 1;
            }

            var wiring = files.WebhookWiringOptions(webhook.ListenUris[0]);
            WebhookWiring.Write(wiring, files.ApiServerDirectory);
            SandboxSecurityOptions security;
            try
            {
                security = new SandboxSecurityOptions
                {
                    TokenWebhookKubeconfig = Path.Combine(files.ApiServerDirectory, WebhookWiring.AuthenticationKubeconfig),
                    TokenWebhookCacheTtl = DemoFiles.WebhookCacheTtl,
                    Authorizers = AuthorizationConfigurationFile.Load(Path.Combine(files.ApiServerDirectory, WebhookWiring.AuthorizationConfig)).Authorizers,
                    RbacManifests = [Path.Combine(files.Directory, "rbac")],
                };
            }
            catch (ConfigurationException ex)
            {
                await Console.Error.WriteLineAsync($"portcullis demo: the generated wiring in {files.ApiServerDirectory} cannot be read: {ex.Message}");
                return 2;
            }

            SandboxServer sandbox;
            try
            {
                sandbox = await SandboxServer.StartAsync(new SandboxOptions
                {
                    ListenAddress = new IPEndPoint(IPAddress.Loopback, settings.Port),
                    ServerCertificate = files.Load("sandbox"),
                    // The API server accepts the users' client certificates (the demo CA) and asks Portcullis about tokens.
                    ClientCA = files.LoadCaBundle(DemoFiles.UserCa),
                    Seed = true,
                    Security = security,
                }, stop);
            }
            catch (ConfigurationException ex)
            {
                await Console.Error.WriteLineAsync($"portcullis demo: the API server cannot use {files.ApiServerDirectory} or {Path.Combine(files.Directory, "rbac")}: {ex.Message}");
                return 2;
            }
            catch (IOException ex)
            {
                await Console.Error.WriteLineAsync($"portcullis demo: the API server cannot listen on 127.0.0.1:{settings.Port}: {ex.Message} (choose another with --port)");
                return 1;
            }
            await using (sandbox)
            {
                files.WriteClientKubeconfigs(sandbox.Uri, DemoFiles.UpstreamCa, webhookMode: true);
                await Console.Out.WriteAsync(WebhookBanner(files, sandbox.Uri, webhook.ListenUris[0], webhook.AdminUri!, sandbox.AuthorizerNames));
                try
                {
                    await Task.Delay(Timeout.Infinite, stop);
                }
                catch (OperationCanceledException)
                {
                }
                await Console.Out.WriteLineAsync("portcullis demo: stopping");
                // The API server first, so that no request is left asking a webhook that has gone.
                await sandbox.StopAsync(CancellationToken.None);
            }
            await webhook.StopAsync(CancellationToken.None);
        }
        await Console.Out.WriteLineAsync("portcullis demo: stopped");
        return 0;
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

    /// <summary>Webhook mode's "try this" list: the whole path, kubectl → the API server → Portcullis → the API server's RBAC.</summary>
    internal static string WebhookBanner(DemoFiles files, Uri apiServer, Uri webhook, Uri admin, IReadOnlyList<string> authorizers)
    {
        var dir = Display(files.Directory);
        var api = apiServer.GetLeftPart(UriPartial.Authority);
        var wh = webhook.GetLeftPart(UriPartial.Authority);
        var ad = admin.GetLeftPart(UriPartial.Authority);
        var ttl = ((int)DemoFiles.WebhookCacheTtl.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s";
        var created = files.Created.Count == 0 ? "reused" : $"created {files.Created.Count} files in";
        var text = new StringBuilder();
        text.AppendLine();
        text.AppendLine($"Portcullis demo ready (webhook mode): API server {api} webhook {wh} admin {ad}");
        text.AppendLine($"  files      {dir}/ ({created} it; webhook.yaml, deny.yaml, apiserver/, rbac/, pki/, tokens.csv, *.kubeconfig)");
        text.AppendLine($"  API server {api}  the in-memory sandbox as kube-apiserver (not a cluster): client certificates of pki/ca.crt,");
        text.AppendLine($"             bearer tokens by TokenReview to Portcullis; authorizers {string.Join(", ", authorizers)} ({dir}/apiserver/authorization-config.yaml)");
        text.AppendLine($"             Portcullis's webhook: failurePolicy Deny, authorizedTTL {ttl}, unauthorizedTTL {ttl}, token cache {ttl}; RBAC from {dir}/rbac/");
        text.AppendLine($"  webhook    {wh}/authenticate and /authorize  portcullis webhook with {dir}/webhook.yaml: tokens.csv, deny list deny.yaml, audit");
        text.AppendLine($"  wiring     {dir}/apiserver/  as `portcullis webhook kubeconfig` writes it, with kube-apiserver-flags.txt");
        text.AppendLine($"  metrics    {ad}/metrics   (and /healthz /livez /readyz)");
        text.AppendLine($"  audit log  {dir}/webhook-audit.log   (every review with its decision)");
        text.AppendLine();
        text.AppendLine("Try this in another terminal (kubectl talks to the API server; the API server asks Portcullis):");
        text.AppendLine($"  kubectl --kubeconfig {dir}/ci-bot.kubeconfig auth whoami            # a token: Portcullis's TokenReview maps it to ci-bot, groups ci");
        text.AppendLine($"  kubectl --kubeconfig {dir}/jane.kubeconfig get pods -n dev          # Portcullis: no opinion; the API server's RBAC allows (group developers)");
        text.AppendLine($"  kubectl --kubeconfig {dir}/jane.kubeconfig get secrets -n prod      # no opinion, and RBAC has no allow: kube-apiserver's 403");
        text.AppendLine($"  kubectl --kubeconfig {dir}/mallory.kubeconfig get pods -n dev       # RBAC would allow (developers); Portcullis's deny list refuses: 403");
        text.AppendLine($"  {DenyJaneCommand(dir)}   # jane's next request: 403 within about {ttl} (reload + authorizedTTL)");
        text.AppendLine($"  curl -s {ad}/metrics | grep portcullis_webhook_reviews_total");
        text.AppendLine();
        text.AppendLine("Ctrl+C stops the API server and the webhook.");
        return text.ToString();
    }

    /// <summary>The webhook banner's deny-list line: jane appended to <c>deny.yaml</c> (delete the line to let her back in).</summary>
    internal static string DenyJaneCommand(string dir) =>
        $"echo '- {{user: jane, reason: demo}}' >> {dir}/deny.yaml";

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
