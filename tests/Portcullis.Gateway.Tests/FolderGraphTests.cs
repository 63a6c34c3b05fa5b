using System.Text.RegularExpressions;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 14, part 3: the gateway's folders import in one direction only. Each folder is a namespace
/// (<c>Portcullis.Gateway.&lt;Folder&gt;</c>); a folder may name another only when that one sits in a lower tier of
/// <see cref="Tiers"/>. Folders of one tier (the stages) never name each other. docs/architecture.md draws the same graph.
/// </summary>
public sealed partial class FolderGraphTests
{
    /// <summary>Bottom first. Hosting, the composition root, is the only folder that may name every other one.</summary>
    internal static readonly string[][] Tiers =
    [
        ["Diagnostics"],
        ["Upstream"],
        ["Snapshots"],
        ["Pipeline"],
        ["Streams"],
        ["Network", "Tls", "Http", "Audit", "Authentication", "Authorization", "Admission", "Forwarding", "Admin", "Webhook"],
        ["Hosting"],
    ];

    [Fact]
    public void Every_folder_names_only_folders_below_it()
    {
        var root = GatewaySourceRoot();
        var violations = Violations(root);
        Assert.True(violations.Count == 0, "folders that name a folder not below them:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void Every_folder_of_the_gateway_is_in_the_declared_order()
    {
        var root = GatewaySourceRoot();
        var declared = Tiers.SelectMany(t => t).ToHashSet(StringComparer.Ordinal);
        var folders = Directory.GetDirectories(root).Select(Path.GetFileName)
            .Where(f => f is not ("bin" or "obj") && Directory.EnumerateFiles(Path.Combine(root, f!), "*.cs", SearchOption.AllDirectories).Any())
            .ToList();
        Assert.NotEmpty(folders);
        Assert.All(folders, f => Assert.Contains(f!, declared));
    }

    [Fact]
    public void The_check_finds_an_upward_import()
    {
        // The rule itself, on a made-up file: Pipeline naming Hosting (what Pipeline/GatewayRequestFeature.cs once did).
        var found = Names("using Portcullis.Gateway.Hosting;\nnamespace Portcullis.Gateway.Pipeline;\nclass A { Portcullis.Gateway.Streams.StreamRegistry? r; }");
        Assert.Equal(["Hosting", "Streams"], found.Order(StringComparer.Ordinal));
        Assert.False(MayName("Pipeline", "Hosting"));
        Assert.False(MayName("Pipeline", "Streams"));
        Assert.False(MayName("Audit", "Authentication"));
        Assert.True(MayName("Hosting", "Audit"));
        Assert.True(MayName("Forwarding", "Upstream"));
    }

    internal static List<string> Violations(string root)
    {
        var violations = new List<string>();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (relative.StartsWith("obj/", StringComparison.Ordinal) || relative.StartsWith("bin/", StringComparison.Ordinal))
            {
                continue;
            }
            var slash = relative.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0)
            {
                continue; // the assembly marker at the root names no folder
            }
            var folder = relative[..slash];
            foreach (var named in Names(File.ReadAllText(file)))
            {
                if (named != folder && !MayName(folder, named))
                {
                    violations.Add($"{relative}: {folder} names {named}");
                }
            }
        }
        return violations;
    }

    /// <summary>Every gateway folder a file names: <c>using</c> directives (static and aliases too) and qualified names.</summary>
    internal static HashSet<string> Names(string source) =>
        [.. QualifiedName().Matches(source).Select(m => m.Groups[1].Value)];

    internal static bool MayName(string folder, string named)
    {
        var from = Tier(folder);
        var to = Tier(named);
        return from >= 0 && to >= 0 && to < from;
    }

    private static int Tier(string folder) => Array.FindIndex(Tiers, t => t.Contains(folder, StringComparer.Ordinal));

    private static string GatewaySourceRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "Portcullis.Gateway");
            if (File.Exists(Path.Combine(candidate, "Portcullis.Gateway.csproj")))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException("src/Portcullis.Gateway not found above " + AppContext.BaseDirectory);
    }

    // "namespace Portcullis.Gateway.X" declares, it does not name: skipped by the lookbehind.
    [GeneratedRegex(@"(?<!namespace\s+)\bPortcullis\.Gateway\.([A-Z]\w*)")]
    private static partial Regex QualifiedName();
}
