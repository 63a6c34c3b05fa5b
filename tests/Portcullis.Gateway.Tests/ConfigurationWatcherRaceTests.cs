using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Audit;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Snapshots;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>The watcher never loses a write: a change that lands while a reload is swapping in is reloaded too.</summary>
public sealed class ConfigurationWatcherRaceTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A deny-list entry written after a reload read deny.yaml, and before the watcher stamped the files of the snapshot
    /// it swapped in, used to be taken for the state that reload had read: it stayed unloaded until some other change.
    /// The watcher now keeps the stamps taken before the reload read the files, so the next poll sees the write.
    /// </summary>
    [Fact]
    public async Task A_deny_list_write_landing_while_a_reload_swaps_in_is_reloaded_at_the_next_poll()
    {
        using var folder = new ConfigFolder();
        folder.WriteConfig();
        using var load = GatewayConfigurationPipeline.Load(folder.ConfigPath);
        Assert.True(load.IsValid, string.Join('\n', load.Errors));
        using var metrics = new GatewayMetrics();
        var holder = SnapshotHolder.Create(load, metrics, NullLogger.Instance, TimeProvider.System,
            plan => AuditSink.Create(plan, metrics.Audit, _ => { }, TimeProvider.System));
        // Subscribed before the watcher, so it runs after the reload has read deny.yaml and before the watcher re-stamps:
        // the narrowest place a real write can land, made certain.
        var written = 0;
        holder.Swapped += _ =>
        {
            if (Interlocked.Exchange(ref written, 1) == 0)
            {
                File.AppendAllText(folder.Path("deny.yaml"), "- user: eve\n  reason: written while the reload swapped in\n");
            }
        };
        using var watcher = new ConfigurationWatcher(holder, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(50));

        File.AppendAllText(folder.Path("deny.yaml"), "- user: trudy\n  reason: the write that starts the reload\n");

        var clock = Stopwatch.StartNew();
        while (!Denies(holder.Current, "trudy"))
        {
            Assert.True(clock.Elapsed < Deadline, "the first write was never reloaded");
            await Task.Delay(50); // a poll interval under a deadline
        }
        Assert.Equal(1, Volatile.Read(ref written));
        while (!Denies(holder.Current, "eve"))
        {
            Assert.True(clock.Elapsed < Deadline, "the write that landed while the reload swapped in was never reloaded");
            await Task.Delay(50);
        }
        Assert.True(Denies(holder.Current, "mallory"));
    }

    private static bool Denies(GatewaySnapshot snapshot, string user) =>
        snapshot.Authorizer.DenyList?.List.Entries.Any(e => e.Selector == "user" && e.Value == user) == true;
}
