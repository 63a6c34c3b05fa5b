using System.Net;
using System.Net.Http.Headers;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

public sealed class GatewayForwardingTests : IAsyncLifetime
{
    private GatewayTestHost _gw = null!;

    public async Task InitializeAsync() => _gw = await GatewayTestHost.StartAsync();

    public async Task DisposeAsync() => await _gw.DisposeAsync();

    [Fact]
    public async Task Client_certificate_user_is_impersonated_upstream_with_the_gateway_credentials()
    {
        using var client = _gw.Client(_gw.Pki.IssueClient("jane", "developers", "qa"));

        using var response = await client.GetAsync("/api/v1/namespaces/dev/pods");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(_gw.Upstream.Requests);
        Assert.Equal("/api/v1/namespaces/dev/pods", seen.PathAndQuery);
        Assert.Equal(["jane"], seen.Values("Impersonate-User"));
        Assert.Equal(["developers", "qa"], seen.Values("Impersonate-Group"));
        Assert.Contains("CN=portcullis-gateway", seen.ClientCertificateSubject);
        Assert.Empty(seen.Values("Authorization"));
    }

    [Fact]
    public async Task Token_file_user_is_forwarded_and_the_token_is_not()
    {
        using var client = _gw.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "token-jane");

        using var response = await client.GetAsync("/api/v1/pods");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(_gw.Upstream.Requests);
        Assert.Equal(["jane"], seen.Values("Impersonate-User"));
        Assert.Equal(["u-1"], seen.Values("Impersonate-Uid"));
        Assert.Empty(seen.Values("Authorization"));
    }

    [Fact]
    public async Task Anonymous_request_gets_kube_apiservers_exact_401_body()
    {
        using var client = _gw.Client();

        using var response = await client.GetAsync("/api/v1/namespaces");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}""",
            await response.Content.ReadAsStringAsync());
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.False(response.Headers.Contains("WWW-Authenticate"));
        Assert.Empty(_gw.Upstream.Requests);
    }

    [Fact]
    public async Task Invalid_bearer_token_is_401_even_with_a_valid_looking_header()
    {
        using var client = _gw.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-token");
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Empty(_gw.Upstream.Requests);
    }

    [Fact]
    public async Task Audit_id_is_echoed_when_well_formed_and_replaced_when_not()
    {
        using var client = _gw.Client(_gw.Pki.IssueClient("jane"));
        using var echoed = new HttpRequestMessage(HttpMethod.Get, "/api/v1/pods");
        echoed.Headers.Add("Audit-ID", "abc-123");
        using var r1 = await client.SendAsync(echoed);
        Assert.Equal("abc-123", r1.Headers.GetValues("Audit-ID").Single());

        using var forged = new HttpRequestMessage(HttpMethod.Get, "/api/v1/pods");
        forged.Headers.TryAddWithoutValidation("Audit-ID", "x\" stage=\"Forged" + new string('a', 200));
        using var r2 = await client.SendAsync(forged);
        Assert.True(Guid.TryParse(r2.Headers.GetValues("Audit-ID").Single(), out _));
        Assert.Equal("no-cache, private", r2.Headers.CacheControl?.ToString());
    }

    [Fact]
    public async Task Upstream_redirect_is_passed_back_and_never_followed()
    {
        using var client = _gw.Client(_gw.Pki.IssueClient("jane"));

        using var response = await client.GetAsync("/redirect");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal("https://198.51.100.7/elsewhere", response.Headers.Location?.ToString());
        Assert.Single(_gw.Upstream.Requests);
    }

    [Fact]
    public async Task Watch_events_arrive_before_the_stream_ends()
    {
        using var client = _gw.Client(_gw.Pki.IssueClient("jane"));
        using var response = await client.GetAsync("/api/v1/namespaces/dev/pods?watch=true", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        var first = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("\"one\"", first);

        _gw.Upstream.SecondWatchEvent.SetResult();
        var second = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("\"two\"", second);
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task A_watch_with_no_event_yet_answers_its_headers_at_once(string version)
    {
        // client-node's Watch.watch resolves on the headers: the gateway held them until the first event.
        using var client = _gw.Client(_gw.Pki.IssueClient("jane"));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/dev/pods?watch=true&resourceVersion=empty")
        {
            Version = Version.Parse(version),
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(_gw.Upstream.SecondWatchEvent.Task.IsCompleted); // the headers came before any event
        _gw.Upstream.SecondWatchEvent.SetResult();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var first = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("\"two\"", first);
    }

    [Fact]
    public async Task Bodies_of_every_framing_keep_one_header_line_per_group_on_a_reused_upstream_connection()
    {
        using var client = _gw.Client(_gw.Pki.IssueClient("jane", "developers", "qa, team"));
        using (var sized = await client.PostAsync("/api/v1/namespaces/dev/configmaps", new StringContent("{\"X-Portcullis-Split-Impersonate-Group\":\"a,b\"}")))
        {
            Assert.Equal(HttpStatusCode.OK, sized.StatusCode);
        }
        using (var chunked = await client.PutAsync("/api/v1/namespaces/dev/configmaps/c1", new StreamContent(new MemoryStream(new byte[70_000]))))
        {
            Assert.Equal(HttpStatusCode.OK, chunked.StatusCode);
        }
        using (var get = await client.GetAsync("/api/v1/namespaces/dev/configmaps/c1"))
        {
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        }

        Assert.Equal(3, _gw.Upstream.Requests.Count);
        Assert.All(_gw.Upstream.Requests, r => Assert.Equal(["developers", "qa, team"], r.Values("Impersonate-Group")));
    }

    [Fact]
    public async Task Http2_requests_are_served()
    {
        using var client = _gw.Client(_gw.Pki.IssueClient("jane"), version: HttpVersion.Version20);
        using var response = await client.GetAsync("/api/v1/pods");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
    }
}
