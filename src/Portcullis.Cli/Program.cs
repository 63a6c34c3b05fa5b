namespace Portcullis.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        Console.WriteLine("portcullis: skeleton");
        return args.Length == 0 ? 0 : 2;
    }
}
