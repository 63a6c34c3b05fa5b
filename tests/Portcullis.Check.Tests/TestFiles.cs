namespace Portcullis.Check.Tests;

/// <summary>Paths of the copied fixtures and throwaway directories for hand-made files.</summary>
internal static class TestFiles
{
    public static string Fixtures { get; } = Path.Combine(AppContext.BaseDirectory, "fixtures");

    public static string Fixture(string relative) => Path.Combine(Fixtures, relative);

    /// <summary>A fresh directory under the temp dir; each test gets its own, so tests never share files.</summary>
    public static string NewDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "portcullis-check-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static string Write(string directory, string relative, string text)
    {
        var path = Path.Combine(directory, relative.TrimStart('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }
}
