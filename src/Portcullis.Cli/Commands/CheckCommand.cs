using System.CommandLine;
using Portcullis.Check;
using Portcullis.Check.Output;
using Portcullis.Cli.Check;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Cli;

/// <summary><c>portcullis check</c>: static audit of a kube-apiserver (manifest, flags, live cluster) or of a gateway configuration.</summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var manifest = new Option<FileInfo>("--manifest") { Description = "A kube-apiserver static pod manifest (e.g. /etc/kubernetes/manifests/kube-apiserver.yaml)" };
        var root = new Option<DirectoryInfo>("--root") { Description = "Read the files the manifest or flags name under this directory (a copy of the node's filesystem)" };
        var flags = new Option<string>("--flags") { Description = "kube-apiserver's command line, e.g. from ps -ef" };
        var flagsFile = new Option<FileInfo>("--flags-file") { Description = "A file holding kube-apiserver's command line" };
        var kubeconfig = new Option<FileInfo>("--kubeconfig") { Description = "Read the kube-apiserver Pod, FlowSchemas and the kubernetes Service from a live cluster" };
        var context = new Option<string>("--context") { Description = "The kubeconfig context to use" };
        var gateway = new Option<FileInfo>("--gateway") { Description = "Score a Portcullis GatewayConfiguration with the same rules" };
        var output = OutputOption();
        var command = new Command("check", "Audit a kube-apiserver's configuration by layer, with CIS ids and fixes; exit 0 no FAIL, 1 FAIL, 2 unreadable input.")
        {
            manifest, root, flags, flagsFile, kubeconfig, context, gateway, output,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var rootPath = parse.GetValue(root)?.FullName;
            var chosen = new object?[] { parse.GetValue(manifest), parse.GetValue(flags), parse.GetValue(flagsFile), parse.GetValue(kubeconfig), parse.GetValue(gateway) }.Count(v => v is not null);
            CheckReport report;
            if (chosen != 1)
            {
                report = CheckReport.Unreadable(ConfigurationCheck.Tool, "(no input)", "give exactly one of --manifest, --flags, --flags-file, --kubeconfig, --gateway");
            }
            else if (parse.GetValue(manifest) is { } m)
            {
                report = ConfigurationCheck.FromManifest(m.FullName, rootPath);
            }
            else if (parse.GetValue(flags) is { } line)
            {
                report = ConfigurationCheck.FromFlags(line, rootPath);
            }
            else if (parse.GetValue(flagsFile) is { } ff)
            {
                report = ConfigurationCheck.FromFlagsFile(ff.FullName, rootPath);
            }
            else if (parse.GetValue(kubeconfig) is { } kc)
            {
                var (input, error) = await LiveClusterReader.ReadAsync(kc.FullName, parse.GetValue(context), TimeSpan.FromSeconds(30)).ConfigureAwait(false);
                report = input is null ? CheckReport.Unreadable(ConfigurationCheck.Tool, kc.FullName, error!) : ConfigurationCheck.Run(input, kc.FullName);
            }
            else
            {
                // Scored only if serve would start with it: loaded through the same pipeline as serve and validate.
                var path = parse.GetValue(gateway)!.FullName;
                using var load = GatewayConfigurationPipeline.Load(path);
                report = ConfigurationCheck.FromGateway(path, load.Configuration, load.AuditPolicy, load.Errors);
            }
            return Emit(report, parse.GetValue(output));
        });
        return command;
    }

    internal static Option<ReportFormat> OutputOption() =>
        new("--output", "-o") { Description = "table (default), json, sarif or junit", DefaultValueFactory = _ => ReportFormat.Table };

    internal static int Emit(CheckReport report, ReportFormat format)
    {
        var color = format == ReportFormat.Table && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
        Console.Out.Write(ReportWriters.Render(report, format, color));
        if (report.InputError is not null && format != ReportFormat.Table)
        {
            Console.Error.WriteLine(report.InputError);
        }
        return report.ExitCode;
    }
}
