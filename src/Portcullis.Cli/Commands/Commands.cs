using System.CommandLine;

namespace Portcullis.Cli;

/// <summary>The registry of subcommands: one line per command.</summary>
internal static class Commands
{
    public static IEnumerable<Command> All() =>
    [
        ValidateCommand.Create(),
        CheckCommand.Create(),
        ProbeCommand.Create(),
    ];
}
