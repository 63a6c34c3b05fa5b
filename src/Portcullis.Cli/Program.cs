using System.CommandLine;

namespace Portcullis.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        var root = new RootCommand("Portcullis: a defense-in-depth front door for the Kubernetes API.");
        // One line per command; each command lives in its own file under Commands/.
        foreach (var command in Commands.All())
        {
            root.Subcommands.Add(command);
        }
        // Signals are handled by the commands themselves so a graceful drain is not cut short.
        return root.Parse(args).Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }
}
