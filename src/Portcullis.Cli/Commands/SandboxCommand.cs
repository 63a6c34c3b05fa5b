using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Authorization;
using Portcullis.Configuration;
using Portcullis.Sandbox;
using Portcullis.Sandbox.Security;
using Portcullis.Tls;

namespace Portcullis.Cli;

/// <summary><c>portcullis sandbox</c>: runs the in-memory Kubernetes-style API server until Ctrl+C or SIGTERM.</summary>
internal static class SandboxCommand
{
    private const string Description =
        "Run an in-memory Kubernetes-style API server over HTTPS for demos and tests. " +
        "It is NOT a cluster: nothing runs, and unless in webhook mode it enforces NO RBAC of its own — any client certificate " +
        "from --client-ca may read and write everything. Put it behind the gateway, never on a shared network. " +
        "Webhook mode (--authentication-webhook, --authorization-webhook, --authorization-config or --rbac) makes it authenticate and " +
        "authorize every request as kube-apiserver does (see docs/sandbox.md).";

    public static Command Create()
    {
        var address = new Option<string>("--address") { Description = "IP:port to listen on (localhost means 127.0.0.1; port 0 picks a free port)", DefaultValueFactory = _ => "127.0.0.1:7443" };
        var cert = new Option<FileInfo>("--cert") { Description = "PEM server certificate", Required = true };
        var key = new Option<FileInfo>("--key") { Description = "PEM private key of the server certificate", Required = true };
        var clientCa = new Option<FileInfo>("--client-ca") { Description = "PEM CA bundle; only client certificates chaining to it are accepted", Required = true };
        var seed = new Option<bool>("--seed") { Description = "create namespaces dev, prod, kube-system, default with a few pods, a secret and a configmap" };
        var authnWebhook = new Option<FileInfo>("--authentication-webhook") { Description = "webhook mode: TokenReview webhook kubeconfig for bearer tokens (kube-apiserver's --authentication-token-webhook-config-file)" };
        var authnVersion = new Option<string>("--authentication-token-webhook-version") { Description = "TokenReview version sent: v1 or v1beta1", DefaultValueFactory = _ => "v1" };
        var authnTtl = new Option<string>("--authentication-token-webhook-cache-ttl") { Description = "how long TokenReview answers are reused", DefaultValueFactory = _ => "2m" };
        var audiences = new Option<string>("--api-audiences") { Description = "comma-separated audiences sent in each TokenReview's spec.audiences" };
        var authzWebhook = new Option<FileInfo>("--authorization-webhook") { Description = "webhook mode: SubjectAccessReview webhook kubeconfig, asked before RBAC with failurePolicy NoOpinion (kube-apiserver's --authorization-webhook-config-file)" };
        var authzVersion = new Option<string>("--authorization-webhook-version") { Description = "SubjectAccessReview version sent: v1 or v1beta1", DefaultValueFactory = _ => "v1" };
        var authorizedTtl = new Option<string>("--authorization-webhook-cache-authorized-ttl") { Description = "how long an allowed answer is reused (0: not cached)", DefaultValueFactory = _ => "5m" };
        var unauthorizedTtl = new Option<string>("--authorization-webhook-cache-unauthorized-ttl") { Description = "how long any other answer is reused (0: not cached)", DefaultValueFactory = _ => "30s" };
        var authzConfig = new Option<FileInfo>("--authorization-config") { Description = "webhook mode: an AuthorizationConfiguration (apiserver.config.k8s.io/v1) file: authorizers in order, Webhook stanzas with failurePolicy and matchConditions" };
        var rbac = new Option<FileInfo[]>("--rbac") { Description = "webhook mode: Role/ClusterRole/RoleBinding/ClusterRoleBinding manifests (file or folder, repeatable) the RBAC authorizer evaluates", AllowMultipleArgumentsPerToken = false };
        var command = new Command("sandbox", Description)
        {
            address, cert, key, clientCa, seed, authnWebhook, authnVersion, authnTtl, audiences, authzWebhook, authzVersion, authorizedTtl, unauthorizedTtl, authzConfig, rbac,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!TryParseEndpoint(parse.GetValue(address)!, out var endpoint))
            {
                Console.Error.WriteLine($"--address {parse.GetValue(address)}: expected IP:port, e.g. 127.0.0.1:7443 or [::1]:7443");
                return 2;
            }
            X509Certificate2 serverCertificate;
            X509Certificate2Collection clientCas;
            try
            {
                serverCertificate = PemCertificates.LoadWithKeyFromFiles(parse.GetValue(cert)!.FullName, parse.GetValue(key)!.FullName);
                clientCas = [];
                clientCas.ImportFromPemFile(parse.GetValue(clientCa)!.FullName);
                if (clientCas.Count == 0)
                {
                    Console.Error.WriteLine($"--client-ca {parse.GetValue(clientCa)!.FullName}: no certificate found in the file");
                    return 2;
                }
            }
            catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or ArgumentException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine("cannot load the certificates: " + e.Message);
                return 2;
            }

            SandboxSecurityOptions? security;
            try
            {
                security = SecurityOptions(parse, authnWebhook, authnVersion, authnTtl, audiences, authzWebhook, authzVersion, authorizedTtl, unauthorizedTtl, authzConfig, rbac);
            }
            catch (ConfigurationException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }

            using var stop = StopSignal.Register(cancellationToken);
            SandboxServer server;
            try
            {
                server = await SandboxServer.StartAsync(new SandboxOptions
                {
                    ListenAddress = endpoint,
                    ServerCertificate = serverCertificate,
                    ClientCA = clientCas,
                    Seed = parse.GetValue(seed),
                    Security = security,
                }, stop.Token);
            }
            catch (ConfigurationException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"--address {endpoint}: cannot listen: {e.Message}");
                return 1;
            }
            await using var running = server;
            Console.Out.WriteLine(security is null
                ? $"sandbox API server listening on {server.Uri} (not a cluster; no RBAC). Ctrl+C to stop."
                : $"sandbox API server listening on {server.Uri} (not a cluster; webhook mode: authorizers {string.Join(", ", server.AuthorizerNames)}). Ctrl+C to stop.");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
            await server.StopAsync(CancellationToken.None);
            Console.Out.WriteLine("sandbox stopped");
            return 0;
        });
        return command;
    }

    /// <summary>Webhook mode's settings from the flags; null when none of them is given. Errors name the flag.</summary>
    private static SandboxSecurityOptions? SecurityOptions(ParseResult parse, Option<FileInfo> authnWebhook, Option<string> authnVersion, Option<string> authnTtl,
        Option<string> audiences, Option<FileInfo> authzWebhook, Option<string> authzVersion, Option<string> authorizedTtl, Option<string> unauthorizedTtl,
        Option<FileInfo> authzConfig, Option<FileInfo[]> rbac)
    {
        var errors = new List<ConfigError>();
        var tokenWebhook = parse.GetValue(authnWebhook);
        var sarWebhook = parse.GetValue(authzWebhook);
        var config = parse.GetValue(authzConfig);
        var manifests = parse.GetValue(rbac) ?? [];
        if (tokenWebhook is null && sarWebhook is null && config is null && manifests.Length == 0)
        {
            foreach (var option in new Option[] { authnVersion, authnTtl, audiences, authzVersion, authorizedTtl, unauthorizedTtl })
            {
                if (parse.GetResult(option) is { Implicit: false })
                {
                    errors.Add(new ConfigError("(flags)", 0, option.Name, "applies to webhook mode only: add --authentication-webhook, --authorization-webhook, --authorization-config or --rbac"));
                }
            }
            return errors.Count > 0 ? throw new ConfigurationException(errors) : null;
        }
        TimeSpan Duration(Option<string> option)
        {
            var text = parse.GetValue(option)!;
            if (GoDuration.TryParse(text, out var value) && value >= TimeSpan.Zero)
            {
                return value;
            }
            errors.Add(new ConfigError("(flags)", 0, option.Name, $"\"{text}\" is not a duration such as 30s, 2m or 1h"));
            return TimeSpan.Zero;
        }
        string Version(Option<string> option)
        {
            var text = parse.GetValue(option)!;
            if (text is not ("v1" or "v1beta1"))
            {
                errors.Add(new ConfigError("(flags)", 0, option.Name, $"\"{text}\" is not v1 or v1beta1"));
            }
            return text;
        }
        var tokenTtl = Duration(authnTtl);
        var tokenVersion = Version(authnVersion);
        IReadOnlyList<AuthorizationConfigurationFile.AuthorizerConfiguration> authorizers = [];
        if (config is not null)
        {
            // As kube-apiserver: --authorization-config replaces the legacy authorization flags.
            foreach (var option in new Option[] { authzWebhook, authzVersion, authorizedTtl, unauthorizedTtl })
            {
                if (parse.GetResult(option) is { Implicit: false })
                {
                    errors.Add(new ConfigError("(flags)", 0, option.Name, "cannot be used with --authorization-config (put the webhook in the file's authorizers)"));
                }
            }
            try
            {
                authorizers = AuthorizationConfigurationFile.Load(config.FullName).Authorizers;
            }
            catch (ConfigurationException e)
            {
                errors.AddRange(e.Errors);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add(new ConfigError(config.FullName, 0, "--authorization-config", e.Message));
            }
        }
        else if (sarWebhook is not null)
        {
            authorizers = SandboxSecurityOptions.LegacyWebhook(sarWebhook.FullName, Version(authzVersion), Duration(authorizedTtl), Duration(unauthorizedTtl));
        }
        if (errors.Count > 0)
        {
            throw new ConfigurationException(errors);
        }
        return new SandboxSecurityOptions
        {
            TokenWebhookKubeconfig = tokenWebhook?.FullName,
            TokenWebhookVersion = tokenVersion,
            TokenWebhookCacheTtl = tokenTtl,
            ApiAudiences = [.. (parse.GetValue(audiences) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
            Authorizers = authorizers,
            RbacManifests = [.. manifests.Select(m => m.FullName)],
        };
    }

    private static bool TryParseEndpoint(string text, out IPEndPoint endpoint)
    {
        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            text = "127.0.0.1" + text["localhost".Length..];
        }
        return IPEndPoint.TryParse(text, out endpoint!) && text.Contains(':', StringComparison.Ordinal);
    }
}
