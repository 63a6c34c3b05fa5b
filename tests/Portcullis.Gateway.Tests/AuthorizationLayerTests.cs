using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

public sealed class AuthorizationLayerTests
{
    private const string EmptyDenyList = "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries: []\n";

    [Fact]
    public async Task Rbac_allows_the_bound_group_and_answers_kube_apiservers_403_otherwise()
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]");
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));

        using (var allowed = await jane.GetAsync("/api/v1/namespaces/dev/pods"))
        {
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }
        using var denied = await jane.GetAsync("/api/v1/namespaces/prod/secrets/db");
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets \"db\" is forbidden: User \"jane\" cannot get resource \"secrets\" in API group \"\" in the namespace \"prod\"","reason":"Forbidden","details":{"name":"db","kind":"secrets"},"code":403}""",
            await denied.Content.ReadAsStringAsync());
        Assert.Single(gw.Upstream.Requests);
    }

    [Theory]
    [InlineData("/api/v1/namespaces/dev/../kube-system/secrets")]
    [InlineData("/api/v1/namespaces/dev/pods/%2e%2e/secrets")]
    [InlineData("/api/v1/namespaces/dev%2Fpods/x")]
    [InlineData("//api/v1/pods")]
    [InlineData("/api/v1/./secrets")]
    public async Task Non_canonical_paths_are_refused_with_400_not_guessed(string path)
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]");
        var response = await RawHttps.SendAsync(gw, gw.Pki.IssueClient("root", "system:masters"),
            $"GET {path} HTTP/1.1\nHost: localhost\nConnection: close\n\n");
        Assert.StartsWith("HTTP/1.1 400", response);
        Assert.Empty(gw.Upstream.Requests);
    }

    [Fact]
    public async Task Deny_list_entry_closes_an_open_watch_at_the_reload_and_refuses_new_requests()
    {
        await using var gw = await GatewayTestHost.StartAsync("", modes: "[RBAC]", denyList: EmptyDenyList);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using var watch = await jane.GetAsync("/api/v1/namespaces/dev/pods?watch=true", HttpCompletionOption.ResponseHeadersRead).WaitAsync(TimeSpan.FromSeconds(30));
        var reader = new StreamReader(await watch.Content.ReadAsStreamAsync());
        Assert.Contains("\"one\"", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, gw.Host.Streams.Count);
        // The moment the snapshot with jane's entry is in force, seen on the reloading thread after the gateway's own
        // Swapped handlers: how many streams are still open then, and when.
        var swapped = new TaskCompletionSource<(int Open, long At)>(TaskCreationOptions.RunContinuationsAsynchronously);
        gw.Host.Snapshots.Swapped += s =>
        {
            if (s.Authorizer.DenyList?.List.Entries.Count > 0)
            {
                swapped.TrySetResult((gw.Host.Streams.Count, Stopwatch.GetTimestamp()));
            }
        };

        File.WriteAllText(Path.Combine(gw.Dir, "deny.yaml"),
            "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- user: jane\n  reason: laptop stolen 2026-11-20\n");

        // From the write to the swap: the watcher's poll and quiet period (docs/gateway.md: about half a second), then the
        // reload, which takes what a loaded machine gives it; bounded loosely here.
        var (open, at) = await swapped.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // From the swap to the close nothing waits: the close is part of the swap, so the watch is gone before anything
        // else sees the new snapshot.
        Assert.Equal(0, open);
        var closed = await Record.ExceptionAsync(async () =>
        {
            if (await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)) is null)
            {
                throw new EndOfStreamException();
            }
        });
        Assert.True(closed is not null and not TimeoutException, $"the watch was not closed: {closed}");
        var seen = Stopwatch.GetElapsedTime(at);
        // The client sees the abort as soon as its read runs (a loopback FIN/RST): an order of magnitude under the bound.
        Assert.True(seen < TimeSpan.FromSeconds(5), $"the client saw the close {seen} after the swap");
        using var again = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.Forbidden, again.StatusCode);
        Assert.Contains("laptop stolen", await again.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Deny_list_applies_to_system_masters_and_to_tokens_by_digest()
    {
        var tokenDigest = Portcullis.Authentication.TokenFile.Digest("token-root");
        await using var gw = await GatewayTestHost.StartAsync("", modes: "[RBAC]",
            denyList: $"apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- tokenSHA256: {tokenDigest}\n  reason: leaked in CI logs\n");
        using var client = gw.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "token-root");
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Empty(gw.Upstream.Requests);
    }
}
