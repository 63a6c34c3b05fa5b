using BenchmarkDotNet.Running;

namespace Portcullis.Benchmarks;

/// <summary>
/// Runs the benchmarks: <c>dotnet run -c Release --project bench/Portcullis.Benchmarks -- --filter '*'</c>; with
/// <c>webhook-load …</c> first, the fixed-rate webhook load (<see cref="WebhookLoad"/>, bench/load/webhook.sh).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "webhook-load")
        {
            return WebhookLoad.RunAsync(args).GetAwaiter().GetResult();
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
