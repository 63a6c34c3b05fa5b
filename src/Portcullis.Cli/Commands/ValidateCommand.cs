using System.CommandLine;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis validate --config FILE</c>: loads the configuration exactly as <c>serve</c> does, short of listening
/// (<see cref="GatewayConfigurationPipeline.Load"/>: the file, then every certificate, key, token file, manifest,
/// policy and kubeconfig it names); exit 0 valid, 2 invalid with the errors <c>serve</c> would print. With
/// <c>--webhook</c>, as <c>portcullis webhook</c> loads it.
/// </summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The GatewayConfiguration file", Required = true };
        var webhook = new Option<bool>("--webhook") { Description = "Validate it as portcullis webhook reads it (no upstream; webhook-mode rules)" };
        var command = new Command("validate", "Load a configuration and every file it names as serve would, without listening; exit 0 when valid, 2 when not.") { config, webhook };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(config)!.FullName;
            using var load = GatewayConfigurationPipeline.Load(path, mode: parse.GetValue(webhook) ? Portcullis.Configuration.ConfigurationMode.Webhook : Portcullis.Configuration.ConfigurationMode.Serve);
            if (load.IsValid)
            {
                Console.Out.WriteLine($"{path}: valid");
                return 0;
            }
            ServeCommand.ReportErrors(path, load.Errors);
            return 2;
        });
        return command;
    }
}
