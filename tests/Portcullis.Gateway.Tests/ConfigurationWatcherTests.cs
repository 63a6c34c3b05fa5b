using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Hot reload without waking on every write: the watcher subscribes to name changes only and polls the watched files
/// for in-place writes, so an audit log (or anything else) written beside the configuration costs the gateway nothing.
/// </summary>
public sealed class ConfigurationWatcherTests
{
    private const uint InModify = 0x2;

    [Fact]
    public async Task The_configuration_folder_is_watched_for_names_only_never_for_every_write()
    {
        await using var gw = await GatewayTestHost.StartAsync(
            "audit: {policyFile: audit-policy.yaml, log: {path: audit.log, mode: blocking}}",
            files: new() { ["audit-policy.yaml"] = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n" });
        using var client = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using (var response = await client.GetAsync("/api/v1/pods"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.True(File.Exists(Path.Combine(gw.Dir, "audit.log")), "the audit log is written beside the configuration");

        var masks = InotifyMasks(Inode(gw.Dir));

        Assert.NotEmpty(masks); // the folder is watched (renames, creations, deletions) ...
        Assert.All(masks, m => Assert.True((m & InModify) == 0, $"inotify mask 0x{m:x} includes IN_MODIFY")); // ... but not for writes
    }

    [Fact]
    public async Task The_hosts_watch_neither_the_working_directory_nor_the_program_folder()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        using var client = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using (var response = await client.GetAsync("/api/v1/pods"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Kestrel hosts built with the defaults watch their content root (the working directory) recursively for
        // appsettings.json; every write below it would then wake the gateway. (The test's upstream stand-in uses the
        // gateway's host options too, so any watch here would be the gateway's.)
        Assert.Empty(InotifyMasks(Inode(Environment.CurrentDirectory)));
        Assert.Empty(InotifyMasks(Inode(AppContext.BaseDirectory)));
    }

    [Fact]
    public async Task A_token_appended_in_place_is_picked_up_by_the_poll()
    {
        await using var gw = await GatewayTestHost.StartAsync();
        var swapped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gw.Host.Snapshots.Swapped += _ => swapped.TrySetResult();

        File.AppendAllText(Path.Combine(gw.Dir, "tokens.csv"), "token-appended,appended,u-7\n"); // no rename, no truncation
        await swapped.Task.WaitAsync(TimeSpan.FromSeconds(20));

        using var client = gw.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "token-appended");
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_manifest_edited_in_place_inside_a_watched_folder_is_picked_up()
    {
        var readOnly = GatewayTestHost.RbacYaml.Replace("verbs: [get, list, watch, create, update, patch, delete]", "verbs: [get]", StringComparison.Ordinal);
        await using var gw = await GatewayTestHost.StartAsync("", modes: "[RBAC]", rbacManifests: "[rbac.d]",
            files: new() { ["rbac.d/developers.yaml"] = readOnly });
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using (var before = await jane.GetAsync("/api/v1/namespaces/dev/pods"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, before.StatusCode);
        }
        var swapped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gw.Host.Snapshots.Swapped += _ => swapped.TrySetResult();

        using (var file = new FileStream(Path.Combine(gw.Dir, "rbac.d", "developers.yaml"), FileMode.Open, FileAccess.Write))
        {
            file.SetLength(0); // rewritten through the same inode, as `cat > file` does
            file.Write(System.Text.Encoding.UTF8.GetBytes(GatewayTestHost.RbacYaml));
        }
        await swapped.Task.WaitAsync(TimeSpan.FromSeconds(20));

        using var after = await jane.GetAsync("/api/v1/namespaces/dev/pods");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    private static ulong Inode(string path)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%i", path]) { RedirectStandardOutput = true })!;
        var text = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        return ulong.Parse(text, CultureInfo.InvariantCulture);
    }

    /// <summary>The masks of this process's inotify watches on <paramref name="inode"/>, from /proc/self/fdinfo.</summary>
    private static List<uint> InotifyMasks(ulong inode)
    {
        var masks = new List<uint>();
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(fd).LinkTarget;
            }
            catch (IOException)
            {
                continue; // closed meanwhile
            }
            if (target != "anon_inode:inotify")
            {
                continue;
            }
            string[] lines;
            try
            {
                lines = File.ReadAllLines(Path.Combine("/proc/self/fdinfo", Path.GetFileName(fd)));
            }
            catch (IOException)
            {
                continue;
            }
            foreach (var line in lines.Where(l => l.StartsWith("inotify ", StringComparison.Ordinal)))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                    .Select(f => f.Split(':', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
                if (ulong.Parse(fields["ino"], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == inode)
                {
                    masks.Add(uint.Parse(fields["mask"], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                }
            }
        }
        return masks;
    }
}
