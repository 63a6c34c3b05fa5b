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
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // A usage error is exit 2, as the docs promise: exit 1 means "denied" to explain/who-can and "failed" to check,
            // so a mistyped option must never read as an answer.
            foreach (var error in parsed.Errors)
            {
                Console.Error.WriteLine($"portcullis: {error.Message}");
            }
            var command = string.Join(' ', parsed.CommandResult.Command is RootCommand ? [] : CommandPath(parsed.CommandResult));
            Console.Error.WriteLine($"Run 'portcullis {(command.Length == 0 ? "" : command + " ")}--help' for usage.");
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }

    private static Stack<string> CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new Stack<string>();
        for (System.CommandLine.Parsing.SymbolResult? r = result; r is System.CommandLine.Parsing.CommandResult c && c.Command is not RootCommand; r = r.Parent)
        {
            names.Push(c.Command.Name);
        }
        return names;
    }
}
