using static Portcullis.Gateway.Tests.AuditBackendReloadTests;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// A reload back to a log path that a retired snapshot still writes (A → B → A with a watch begun on the first A still
/// open) gives two log backends on one file: they share one open file, so the watch's late events and the new requests'
/// events are each written once, as whole lines, and none overwrites another.
/// </summary>
public sealed class AuditLogPathReuseTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("blocking", "blocking")]
    [InlineData("batch", "blocking")]
    [InlineData("blocking", "batch")]
    public async Task A_reload_back_to_a_path_still_written_by_an_open_watch_loses_and_overwrites_no_event(string firstMode, string secondMode)
    {
        await using var gw = await StartAsync($"  log:\n    path: audit-a.log\n    mode: {firstMode}\n").WaitAsync(Timeout);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        var first = await SendAsync(jane, "a", 10);
        var (watchId, finishWatch) = await OpenWatchAsync(gw, jane);

        gw.WriteConfig(AuditYaml("  log:\n    path: audit-b.log\n    mode: blocking\n"));
        Assert.Empty(gw.Host.Reload());
        var onB = await SendAsync(jane, "b", 10);

        // Back to A (another mode and a rotation size: new settings, so a new backend) while the watch's backend still has A open.
        gw.WriteConfig(AuditYaml($"  log:\n    path: audit-a.log\n    mode: {secondMode}\n    maxSize: 100\n"));
        Assert.Empty(gw.Host.Reload());
        var again = await SendAsync(jane, "c", 20);
        await finishWatch(); // the first A backend writes the watch's ResponseComplete after the second wrote 20 events
        var more = await SendAsync(jane, "d", 5);
        await gw.Host.StopAsync().WaitAsync(Timeout);

        // LogIds parses every line as one JSON object: a line overwritten in part fails here.
        var a = LogIds(Path.Combine(gw.Dir, "audit-a.log"));
        var b = LogIds(Path.Combine(gw.Dir, "audit-b.log"));
        string[] expectedA = [.. first, .. again, .. more, watchId, watchId]; // watch: ResponseStarted, ResponseComplete
        Assert.Equal(expectedA.Order(StringComparer.Ordinal), a.Order(StringComparer.Ordinal));
        Assert.Equal(onB.Order(StringComparer.Ordinal), b.Order(StringComparer.Ordinal));
    }
}
