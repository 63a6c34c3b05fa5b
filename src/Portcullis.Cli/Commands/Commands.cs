using System.CommandLine;

namespace Portcullis.Cli;

/// <summary>The registry of subcommands: one line per command.</summary>
internal static class Commands
{
    public static IEnumerable<Command> All() =>
    [
        ServeCommand.Create(),
        ValidateCommand.Create(),
        SandboxCommand.Create(),
        ExplainCommand.Create(),
        WhoCanCommand.Create(),
        CheckCommand.Create(),
        ProbeCommand.Create(),
        DemoCommand.Create(),
        BansCommand.Create(),
        FirewallCommand.Create(),
        NetpolCommand.Create(),
        RevokeCommand.Create(),
        WebhookCommand.Create(),
    ];
}
