using System.CommandLine;
using Portcullis.Configuration;

namespace Portcullis.Cli;

/// <summary><c>portcullis validate --config FILE</c>: the same validators as serve; exit 0 valid, 2 invalid.</summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The GatewayConfiguration file", Required = true };
        var command = new Command("validate", "Check a configuration file and every file it names; exit 0 when valid, 2 when not.") { config };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(config)!.FullName;
            var (_, errors) = ConfigurationLoader.TryLoad(path);
            if (errors.Count == 0)
            {
                Console.Out.WriteLine($"{path}: valid");
                return 0;
            }
            Console.Error.WriteLine($"{path}: {errors.Count} error(s):");
            foreach (var error in errors)
            {
                Console.Error.WriteLine("  " + error);
            }
            return 2;
        });
        return command;
    }
}
