using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Sandbox;
using Portcullis.Tls;

namespace Portcullis.Cli;

/// <summary><c>portcullis sandbox</c>: runs the in-memory Kubernetes-style API server until Ctrl+C or SIGTERM.</summary>
internal static class SandboxCommand
{
    private const string Description =
        "Run an in-memory Kubernetes-style API server over HTTPS for demos and tests. " +
        "It is NOT a cluster: nothing runs, and it enforces NO RBAC of its own — any client certificate " +
        "from --client-ca may read and write everything. Put it behind the gateway, never on a shared network.";

    public static Command Create()
    {
        var address = new Option<string>("--address") { Description = "IP:port to listen on (localhost means 127.0.0.1; port 0 picks a free port)", DefaultValueFactory = _ => "127.0.0.1:7443" };
        var cert = new Option<FileInfo>("--cert") { Description = "PEM server certificate", Required = true };
        var key = new Option<FileInfo>("--key") { Description = "PEM private key of the server certificate", Required = true };
        var clientCa = new Option<FileInfo>("--client-ca") { Description = "PEM CA bundle; only client certificates chaining to it are accepted", Required = true };
        var seed = new Option<bool>("--seed") { Description = "create namespaces dev, prod, kube-system, default with a few pods, a secret and a configmap" };
        var command = new Command("sandbox", Description) { address, cert, key, clientCa, seed };
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
                }, stop.Token);
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"--address {endpoint}: cannot listen: {e.Message}");
                return 1;
            }
            await using var running = server;
            Console.Out.WriteLine($"sandbox API server listening on {server.Uri} (not a cluster; no RBAC). Ctrl+C to stop.");
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

    private static bool TryParseEndpoint(string text, out IPEndPoint endpoint)
    {
        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            text = "127.0.0.1" + text["localhost".Length..];
        }
        return IPEndPoint.TryParse(text, out endpoint!) && text.Contains(':', StringComparison.Ordinal);
    }
}
