using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Portcullis.Core.Tests;

/// <summary>
/// The repository stands alone: no tracked file points at the team's working folders outside it (a fixture cites its
/// public origin — repository, path, commit, licence — instead).
/// </summary>
public sealed partial class RepositoryHygieneTests
{
    [Fact]
    public async Task No_tracked_file_refers_to_a_folder_outside_the_repository()
    {
        var root = RepositoryRoot();
        var files = await TrackedFilesAsync(root);
        Assert.True(files.Count > 100, $"only {files.Count} files found under {root}");
        var hits = new List<string>();
        foreach (var relative in files)
        {
            var path = Path.Combine(root, relative);
            if (!File.Exists(path))
            {
                continue; // deleted in the work tree, not yet committed
            }
            // Latin-1 maps every byte to one char: binary files are searched too, without decoding errors.
            var lines = Encoding.Latin1.GetString(File.ReadAllBytes(path)).Split('\n');
            for (var i = 0; i < lines.Length; i++)
            {
                if (OutsideReference().IsMatch(lines[i]))
                {
                    hits.Add($"{relative}:{i + 1}: {lines[i].Trim()}");
                }
            }
        }
        Assert.True(hits.Count == 0, "references to folders outside the repository:\n" + string.Join("\n", hits));
    }

    [Theory]
    [InlineData("Copied from `/work/" + "shared/audit/`", true)]
    [InlineData("Copied unchanged from ../../." + "./shared" + "/oidc/", true)]
    [InlineData("rows from `shared" + "/fixtures/SOURCES.md`", true)]
    [InlineData("| kubernetes/website | `content/en/examples/audit/audit-policy.yaml` |", false)]
    [InlineData("one shared open file, whole lines under one lock", false)]
    public void The_pattern_finds_the_references_and_nothing_else(string line, bool found) =>
        Assert.Equal(found, OutsideReference().IsMatch(line));

    // Written so that this file does not match itself.
    [GeneratedRegex(@"work[/]shared|\.\.[/]shared|\bshared[/]fixtures")]
    private static partial Regex OutsideReference();

    /// <summary>The files git tracks (outside .git by definition); without git, every file but build output.</summary>
    private static async Task<List<string>> TrackedFilesAsync(string root)
    {
        try
        {
            var info = new ProcessStartInfo("git", ["-C", root, "ls-files", "-z"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                StandardOutputEncoding = Encoding.UTF8,
            };
            using var git = Process.Start(info)!;
            var stdout = git.StandardOutput.ReadToEndAsync();
            var stderr = git.StandardError.ReadToEndAsync();
            try
            {
                await git.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException)
            {
                git.Kill();
                throw;
            }
            if (git.ExitCode == 0)
            {
                return [.. (await stdout.WaitAsync(TimeSpan.FromSeconds(10))).Split('\0', StringSplitOptions.RemoveEmptyEntries)];
            }
            _ = await stderr.WaitAsync(TimeSpan.FromSeconds(10)); // not a git checkout (a source archive): walk the tree
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // no git on this machine: walk the tree
        }
        string[] skipped = [".git", "bin", "obj", "node_modules"];
        return [.. Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f))
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Any(part => skipped.Contains(part)))];
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Portcullis.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Portcullis.slnx not found above " + AppContext.BaseDirectory);
    }
}
