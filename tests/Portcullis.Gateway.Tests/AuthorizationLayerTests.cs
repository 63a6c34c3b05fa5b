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
    public async Task Deny_list_entry_closes_an_open_watch_and_refuses_new_requests_within_a_second()
    {
        await using var gw = await GatewayTestHost.StartAsync("", modes: "[RBAC]", denyList: EmptyDenyList);
        using var jane = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        using var watch = await jane.GetAsync("/api/v1/namespaces/dev/pods?watch=true", HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await watch.Content.ReadAsStreamAsync());
        Assert.Contains("\"one\"", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));

        var clock = Stopwatch.StartNew();
        File.WriteAllText(Path.Combine(gw.Dir, "deny.yaml"),
            "apiVersion: portcullis.dev/v1alpha1\nkind: DenyList\nentries:\n- user: jane\n  reason: laptop stolen 2026-11-20\n");

        var closed = await Record.ExceptionAsync(async () =>
        {
            if (await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(1)) is null)
            {
                throw new EndOfStreamException();
            }
        });
        Assert.True(closed is not null and not TimeoutException, $"the watch was not closed within a second: {closed}");
        using var again = await jane.GetAsync("/api/v1/namespaces/dev/pods");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
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
