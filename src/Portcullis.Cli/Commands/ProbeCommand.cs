using System.CommandLine;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Check;
using Portcullis.Check.Probe;
using Portcullis.Cli.Check;

namespace Portcullis.Cli;

/// <summary><c>portcullis probe https://HOST:PORT</c>: what an outsider can learn about an API endpoint; read-only.</summary>
internal static class ProbeCommand
{
    public static Command Create()
    {
        var endpoint = new Argument<string>("endpoint") { Description = "https://HOST:PORT of the API server or gateway" };
        var kubeconfig = new Option<FileInfo>("--kubeconfig") { Description = "Also probe as this kubeconfig's user: APF headers and can-i --list rights" };
        var context = new Option<string>("--context") { Description = "The kubeconfig context to use" };
        var ns = new Option<string>("--namespace", "-n") { Description = "Namespace for the rights review (default: default)" };
        var ca = new Option<FileInfo>("--ca") { Description = "PEM CA certificate(s) to validate the server's certificate against" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds allowed for each network step", DefaultValueFactory = _ => 10 };
        var expectUnreachable = new Option<bool>("--expect-unreachable") { Description = "Succeed only if the endpoint is NOT reachable from here (external exposure check)" };
        var output = CheckCommand.OutputOption();
        var command = new Command("probe", "Probe an API endpoint from outside: TCP, TLS versions, certificate, client-certificate demand, anonymous access, APF; exit 0 no FAIL, 1 FAIL, 2 unusable input.")
        {
            endpoint, kubeconfig, context, ns, ca, timeout, expectUnreachable, output,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var text = parse.GetValue(endpoint)!;
            if (!Uri.TryCreate(text.Contains("://", StringComparison.Ordinal) ? text : "https://" + text, UriKind.Absolute, out var uri))
            {
                return CheckCommand.Emit(CheckReport.Unreadable(EndpointProbe.Tool, text, $"{text}: not a URL; give https://HOST:PORT"), parse.GetValue(output));
            }
            X509Certificate2Collection? trusted = null;
            if (parse.GetValue(ca) is { } caFile)
            {
                try
                {
                    trusted = [];
                    trusted.ImportFromPemFile(caFile.FullName);
                }
                catch (Exception ex)
                {
                    return CheckCommand.Emit(CheckReport.Unreadable(EndpointProbe.Tool, text, $"{caFile.FullName}: cannot be read as PEM certificates: {ex.Message}"), parse.GetValue(output));
                }
            }
            IAuthenticatedProbe? authenticated = parse.GetValue(kubeconfig) is { } kc
                ? new KubeconfigProbe(kc.FullName, parse.GetValue(context), parse.GetValue(ns), trusted)
                : null;
            var options = new ProbeOptions(uri, trusted, TimeSpan.FromSeconds(Math.Clamp(parse.GetValue(timeout), 0.5, 120)), authenticated, parse.GetValue(expectUnreachable));
            var report = await EndpointProbe.RunAsync(options, cancellationToken).ConfigureAwait(false);
            return CheckCommand.Emit(report, parse.GetValue(output));
        });
        return command;
    }
}
