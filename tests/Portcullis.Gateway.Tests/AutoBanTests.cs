using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Tests.Infrastructure;
using Portcullis.Testing;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 16, item 1: network.autoBan in the running gateway. A source failing authentication is banned at accept (no TLS
/// byte) while others keep working; the ban is logged, audited, counted, kept across a restart and expires; the admin
/// endpoints and <c>portcullis bans</c> list, add and remove bans.
/// </summary>
public sealed class AutoBanTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly IPAddress Attacker = IPAddress.Parse("127.0.0.2");

    private const string AuditPolicy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n";

    private static Task<GatewayTestHost> StartAsync(string autoBan, string extra = "") =>
        GatewayTestHost.StartAsync($"network:\n  autoBan:\n    enabled: true\n{autoBan}audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking\n{extra}",
            files: new() { ["audit-policy.yaml"] = AuditPolicy });

    [Fact]
    public async Task A_source_failing_authentication_is_banned_at_accept_while_another_keeps_working()
    {
        const int failures = 200; // the figure: 200 failed authentications from 127.0.0.2
        await using var gw = await StartAsync($"    failures: {failures}\n    window: 5m\n    duration: 1h\n").WaitAsync(Timeout);
        using var attacker = Bearer(gw.Client(localAddress: Attacker), "not-a-token");
        using var jane = Bearer(gw.Client(localAddress: IPAddress.Loopback), "token-jane");

        for (var i = 1; i <= failures; i++)
        {
            using (var refused = await attacker.GetAsync("/api/v1/pods").WaitAsync(Timeout))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
                // The failure that bans is answered, and closes the connection the attacker had open.
                Assert.Equal(i == failures, refused.Headers.ConnectionClose == true);
            }
            using var served = await jane.GetAsync("/api/v1/pods").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        await AssertNoTlsBytesAsync(gw.Uri, Attacker);
        Assert.True(await Record.ExceptionAsync(() => attacker.GetAsync("/api/v1/pods").WaitAsync(Timeout)) is HttpRequestException or IOException);
        using (var still = await jane.GetAsync("/api/v1/pods").WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.OK, still.StatusCode);
        }
        Assert.Equal(failures + 1, gw.Upstream.Requests.Count); // only jane's requests went upstream

        var metrics = await AdminGetAsync(gw.AdminUri, "/metrics");
        Assert.Contains("portcullis_bans_active 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_bans_total{reason=\"authentication\"} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains("portcullis_bans_total{reason=\"manual\"} 0\n", metrics, StringComparison.Ordinal);

        var ban = await AuditEventAsync(gw, "portcullis.dev/ban");
        var annotations = ban.GetProperty("annotations");
        Assert.Equal("127.0.0.2", annotations.GetProperty("portcullis.dev/ban").GetString());
        Assert.Equal("authentication", annotations.GetProperty("portcullis.dev/ban-reason").GetString());
        Assert.Equal($"{failures}", annotations.GetProperty("portcullis.dev/ban-failures").GetString());
        Assert.Equal("1h", annotations.GetProperty("portcullis.dev/ban-duration").GetString());
        Assert.Equal("system:portcullis:autoban", ban.GetProperty("user").GetProperty("username").GetString());
        Assert.Equal("127.0.0.2", ban.GetProperty("sourceIPs")[0].GetString());
        Assert.Equal("create", ban.GetProperty("verb").GetString());
        Assert.DoesNotContain("not-a-token", File.ReadAllText(Path.Combine(gw.Dir, "audit.log")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_manual_ban_closes_the_connections_the_source_already_has_open()
    {
        await using var gw = await StartAsync("").WaitAsync(Timeout);
        using var attacker = Bearer(gw.Client(localAddress: Attacker), "token-jane");
        using var jane = Bearer(gw.Client(localAddress: IPAddress.Loopback), "token-jane");
        const string watch = "/api/v1/namespaces/dev/pods?watch=true";

        // Connection A: the source's open watch, served before the ban.
        using var attackerWatch = await attacker.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, attackerWatch.StatusCode);
        using var attackerReader = new StreamReader(await attackerWatch.Content.ReadAsStreamAsync().WaitAsync(Timeout));
        Assert.Contains("\"one\"", await attackerReader.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);
        using var janeWatch = await jane.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        using var janeReader = new StreamReader(await janeWatch.Content.ReadAsStreamAsync().WaitAsync(Timeout));
        Assert.Contains("\"one\"", await janeReader.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);
        Assert.Equal(1, gw.Host.Bans!.Connections.Count(Attacker));

        using var admin = new HttpClient { BaseAddress = gw.AdminUri, Timeout = Timeout };
        using (var added = await admin.PostAsync("/bans", Json("{\"ip\": \"127.0.0.2\"}")).WaitAsync(Timeout))
        {
            Assert.Equal(HttpStatusCode.Created, added.StatusCode);
        }

        // The watch on connection A ends (reset or end of stream) without any further upstream event; a timeout fails.
        Assert.Null(await NextLineOrEndAsync(attackerReader));
        await AssertNoTlsBytesAsync(gw.Uri, Attacker);

        // Another source's open watch keeps streaming.
        gw.Upstream.SecondWatchEvent.SetResult();
        Assert.Contains("\"two\"", await janeReader.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);

        // The registry forgets a closed connection: polled, as Kestrel finishes the aborted connection asynchronously.
        var deadline = DateTime.UtcNow + Timeout;
        while (gw.Host.Bans.Connections.Count(Attacker) != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the banned source's aborted connection is still registered");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task An_automatic_ban_closes_an_http2_watch_the_source_opened_before_it()
    {
        const int failures = 5;
        await using var gw = await StartAsync($"    failures: {failures}\n    window: 5m\n    duration: 1h\n").WaitAsync(Timeout);
        using var watcher = Bearer(gw.Client(localAddress: Attacker, version: HttpVersion.Version20), "token-jane");
        using var guesser = Bearer(gw.Client(localAddress: Attacker), "not-a-token");
        using var jane = Bearer(gw.Client(localAddress: IPAddress.Loopback, version: HttpVersion.Version20), "token-jane");
        const string watch = "/api/v1/namespaces/dev/pods?watch=true";

        // The source holds a valid watch on an HTTP/2 connection, then guesses tokens on another connection.
        using var sourceWatch = await watcher.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        Assert.Equal(HttpVersion.Version20, sourceWatch.Version);
        using var sourceReader = new StreamReader(await sourceWatch.Content.ReadAsStreamAsync().WaitAsync(Timeout));
        Assert.Contains("\"one\"", await sourceReader.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);
        using var janeWatch = await jane.GetAsync(watch, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeout);
        using var janeReader = new StreamReader(await janeWatch.Content.ReadAsStreamAsync().WaitAsync(Timeout));
        Assert.Contains("\"one\"", await janeReader.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);
        Assert.Equal(1, gw.Host.Bans!.Connections.Count(Attacker)); // the watch's connection; the guesser has not connected yet

        for (var i = 1; i <= failures; i++)
        {
            using var refused = await guesser.GetAsync("/api/v1/pods").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        // The ban the guesses imposed ends the HTTP/2 watch (reset or end of stream) without any further upstream event.
        Assert.Null(await NextLineOrEndAsync(sourceReader));
        await AssertNoTlsBytesAsync(gw.Uri, Attacker);

        // Another source's HTTP/2 watch keeps streaming.
        gw.Upstream.SecondWatchEvent.SetResult();
        Assert.Contains("\"two\"", await janeReader.ReadLineAsync().WaitAsync(Timeout), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ban_survives_a_restart_through_the_state_file()
    {
        await using var gw = await StartAsync("    failures: 3\n    duration: 1h\n    stateFile: bans.json\n").WaitAsync(Timeout);
        using (var attacker = Bearer(gw.Client(localAddress: Attacker), "bad"))
        {
            for (var i = 0; i < 3; i++)
            {
                using var refused = await attacker.GetAsync("/api/v1/pods").WaitAsync(Timeout);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }
        }
        var before = JsonDocument.Parse(await AdminGetAsync(gw.AdminUri, "/bans")).RootElement.GetProperty("bans")[0];

        await gw.Host.StopAsync().WaitAsync(Timeout); // saves the bans in force
        var saved = JsonDocument.Parse(File.ReadAllText(Path.Combine(gw.Dir, "bans.json"))).RootElement;
        Assert.Equal("127.0.0.2", saved.GetProperty("bans")[0].GetProperty("address").GetString());

        await using var restarted = GatewayHost.Create(gw.ConfigPath, Options());
        await restarted.StartAsync().WaitAsync(Timeout);
        var uri = restarted.ListenUris[0];
        await AssertNoTlsBytesAsync(uri, Attacker);
        var after = JsonDocument.Parse(await AdminGetAsync(restarted.AdminUri!, "/bans")).RootElement.GetProperty("bans")[0];
        Assert.Equal("127.0.0.2", after.GetProperty("ip").GetString());
        Assert.Equal(before.GetProperty("expiresAt").GetString(), after.GetProperty("expiresAt").GetString());
        Assert.Equal(3, after.GetProperty("failures").GetInt32());
    }

    [Fact]
    public async Task A_ban_expires_and_the_source_is_served_again()
    {
        await using var gw = await StartAsync("    failures: 2\n    duration: 2s\n    maxDuration: 2s\n").WaitAsync(Timeout);
        using (var attacker = Bearer(gw.Client(localAddress: Attacker), "bad"))
        {
            for (var i = 0; i < 2; i++)
            {
                using var refused = await attacker.GetAsync("/api/v1/pods").WaitAsync(Timeout);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }
        }
        await AssertNoTlsBytesAsync(gw.Uri, Attacker);

        // Poll: the ban lasts 2 s; once it has expired a new connection is served.
        var deadline = DateTime.UtcNow + Timeout;
        HttpStatusCode? status = null;
        while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline)
        {
            using var again = Bearer(gw.Client(localAddress: Attacker), "token-jane");
            try
            {
                using var response = await again.GetAsync("/api/v1/pods").WaitAsync(Timeout);
                status = response.StatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or SocketException or IOException)
            {
                await Task.Delay(100); // still banned: refused at accept (reset or closed)
            }
        }
        Assert.Equal(HttpStatusCode.OK, status);
        var unban = await AuditEventAsync(gw, "portcullis.dev/unban");
        Assert.Equal("expired", unban.GetProperty("annotations").GetProperty("portcullis.dev/unban-reason").GetString());
        Assert.Equal("delete", unban.GetProperty("verb").GetString());
    }

    [Fact]
    public async Task Forbidden_requests_count_only_with_countForbidden()
    {
        await using var gw = await GatewayTestHost.StartAsync("network:\n  autoBan:\n    enabled: true\n    failures: 2\n    countForbidden: true\n", modes: "[AlwaysDeny]").WaitAsync(Timeout);
        using var jane = Bearer(gw.Client(localAddress: Attacker), "token-jane");
        for (var i = 0; i < 2; i++)
        {
            using var refused = await jane.GetAsync("/api/v1/pods").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }
        await AssertNoTlsBytesAsync(gw.Uri, Attacker);
        Assert.Contains("portcullis_bans_total{reason=\"authorization\"} 1\n", await AdminGetAsync(gw.AdminUri, "/metrics"), StringComparison.Ordinal);

        await using var uncounted = await GatewayTestHost.StartAsync("network:\n  autoBan:\n    enabled: true\n    failures: 2\n", modes: "[AlwaysDeny]").WaitAsync(Timeout);
        using var again = Bearer(uncounted.Client(localAddress: Attacker), "token-jane");
        for (var i = 0; i < 4; i++)
        {
            using var refused = await again.GetAsync("/api/v1/pods").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }
        Assert.Contains("portcullis_bans_active 0\n", await AdminGetAsync(uncounted.AdminUri, "/metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_never_ban_source_is_not_banned()
    {
        await using var gw = await StartAsync("    failures: 2\n    neverBan: [127.0.0.2/32]\n").WaitAsync(Timeout);
        using var monitor = Bearer(gw.Client(localAddress: Attacker), "bad");
        for (var i = 0; i < 5; i++)
        {
            using var refused = await monitor.GetAsync("/api/v1/pods").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        using var admin = new HttpClient { BaseAddress = gw.AdminUri, Timeout = Timeout };
        using var manual = await admin.PostAsync("/bans", Json("{\"ip\": \"127.0.0.2\"}"));
        Assert.Equal(HttpStatusCode.BadRequest, manual.StatusCode);
        Assert.Contains("127.0.0.2 is in the never-ban list", await manual.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Admin_endpoints_ban_list_and_unban()
    {
        await using var gw = await StartAsync("").WaitAsync(Timeout);
        using var admin = new HttpClient { BaseAddress = gw.AdminUri, Timeout = Timeout };

        using (var added = await admin.PostAsync("/bans", Json("{\"ip\": \"127.0.0.3\", \"duration\": \"2h\", \"reason\": \"ticket 42\"}")))
        {
            Assert.Equal(HttpStatusCode.Created, added.StatusCode);
            var ban = JsonDocument.Parse(await added.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("manual", ban.GetProperty("reason").GetString());
            Assert.Equal("2h", ban.GetProperty("duration").GetString());
            Assert.Equal("ticket 42", ban.GetProperty("comment").GetString());
        }
        await AssertNoTlsBytesAsync(gw.Uri, IPAddress.Parse("127.0.0.3"));
        var list = JsonDocument.Parse(await admin.GetStringAsync("/bans")).RootElement.GetProperty("bans");
        Assert.Equal("127.0.0.3", Assert.Single(list.EnumerateArray()).GetProperty("ip").GetString());
        var audited = await AuditEventAsync(gw, "portcullis.dev/ban");
        Assert.Equal("ticket 42", audited.GetProperty("annotations").GetProperty("portcullis.dev/ban-comment").GetString());

        using (var bad = await admin.PostAsync("/bans", Json("{\"ip\": \"not-an-ip\"}")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("ip: must be an IP address", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var badDuration = await admin.PostAsync("/bans", Json("{\"ip\": \"127.0.0.4\", \"duration\": \"1d\"}")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, badDuration.StatusCode);
        }
        using (var removed = await admin.DeleteAsync("/bans/127.0.0.3"))
        {
            Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        }
        using (var again = await admin.DeleteAsync("/bans/127.0.0.3"))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }
        using var client = Bearer(gw.Client(localAddress: IPAddress.Parse("127.0.0.3")), "token-jane");
        using var served = await client.GetAsync("/api/v1/pods").WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal("manual", (await AuditEventAsync(gw, "portcullis.dev/unban")).GetProperty("annotations").GetProperty("portcullis.dev/unban-reason").GetString());
    }

    [Fact]
    public async Task The_cli_adds_lists_and_removes_bans()
    {
        await using var gw = await StartAsync("").WaitAsync(Timeout);
        var adminUrl = gw.AdminUri.ToString();

        var add = await PortcullisCli.RunAsync("bans", "add", "127.0.0.5", "--duration", "30m", "--reason", "from the cli", "--admin", adminUrl);
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.StartsWith("banned 127.0.0.5 (manual, until ", add.Stdout, StringComparison.Ordinal);
        await AssertNoTlsBytesAsync(gw.Uri, IPAddress.Parse("127.0.0.5"));

        var list = await PortcullisCli.RunAsync("bans", "list", "--admin", adminUrl);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("127.0.0.5", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("from the cli", list.Stdout, StringComparison.Ordinal);

        var remove = await PortcullisCli.RunAsync("bans", "remove", "127.0.0.5", "--admin", adminUrl);
        Assert.True(remove.ExitCode == 0, remove.ToString());
        var empty = await PortcullisCli.RunAsync("bans", "list", "--admin", adminUrl);
        Assert.Equal("no bans in force", empty.Stdout.Trim());

        var missing = await PortcullisCli.RunAsync("bans", "remove", "127.0.0.5", "--admin", adminUrl);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("127.0.0.5 is not banned", missing.Stderr, StringComparison.Ordinal);
        var unreachable = await PortcullisCli.RunAsync("bans", "list", "--admin", "http://127.0.0.1:1");
        Assert.Equal(2, unreachable.ExitCode);
        Assert.Contains("cannot reach the admin endpoint", unreachable.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bans_answer_409_when_auto_ban_is_off()
    {
        await using var gw = await GatewayTestHost.StartAsync().WaitAsync(Timeout);
        using var admin = new HttpClient { BaseAddress = gw.AdminUri, Timeout = Timeout };
        using var list = await admin.GetAsync("/bans");
        Assert.Equal(HttpStatusCode.Conflict, list.StatusCode);
        Assert.Contains("network.autoBan.enabled", await list.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_corrupt_state_file_refuses_the_start_naming_the_file()
    {
        await using var gw = await StartAsync("    stateFile: bans.json\n").WaitAsync(Timeout);
        await gw.Host.StopAsync().WaitAsync(Timeout);
        var state = Path.Combine(gw.Dir, "bans.json");
        File.WriteAllText(state, "{\"version\": 1, \"bans\": [\n{\"address\": \"nope\"}]}");

        var ex = Assert.Throws<ConfigurationException>(() => GatewayHost.Create(gw.ConfigPath, Options()));
        var error = Assert.Single(ex.Errors).ToString();
        Assert.Contains("network.autoBan.stateFile: ", error, StringComparison.Ordinal);
        Assert.Contains(state, error, StringComparison.Ordinal);
        Assert.Contains("the gateway does not start without its bans", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reload_that_changes_auto_ban_is_reported_as_needing_a_restart()
    {
        await using var gw = await StartAsync("    failures: 3\n").WaitAsync(Timeout);
        gw.WriteConfig($"network:\n  autoBan:\n    enabled: true\n    failures: 9\naudit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking\n");
        Assert.Empty(gw.Host.Reload());

        Assert.Contains("portcullis_config_restart_required{field=\"network.autoBan\"} 1", await AdminGetAsync(gw.AdminUri, "/metrics"), StringComparison.Ordinal);
        // The running banner keeps the settings it started with: 3 failures still ban.
        using var attacker = Bearer(gw.Client(localAddress: Attacker), "bad");
        for (var i = 0; i < 3; i++)
        {
            using var refused = await attacker.GetAsync("/api/v1/pods").WaitAsync(Timeout);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        await AssertNoTlsBytesAsync(gw.Uri, Attacker);
    }

    private static GatewayHostOptions Options() => new()
    {
        ListenOverride = "127.0.0.1:0",
        AdminOverride = "127.0.0.1:0",
        MinimumLogLevel = LogLevel.Warning,
        ReloadDelay = TimeSpan.FromHours(1),
    };

    /// <summary>The next line of a watch, or null when the stream ended or was reset; a timeout fails the test.</summary>
    private static async Task<string?> NextLineOrEndAsync(StreamReader reader)
    {
        try
        {
            return await reader.ReadLineAsync().WaitAsync(Timeout);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            return null;
        }
    }

    private static HttpClient Bearer(HttpClient client, string token)
    {
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    private static async Task<string> AdminGetAsync(Uri admin, string path)
    {
        using var http = new HttpClient { BaseAddress = admin, Timeout = Timeout };
        return await http.GetStringAsync(path).WaitAsync(Timeout);
    }

    /// <summary>The newest audit event carrying <paramref name="annotation"/>, polled for until the deadline.</summary>
    private static async Task<JsonElement> AuditEventAsync(GatewayTestHost gw, string annotation)
    {
        var path = Path.Combine(gw.Dir, "audit.log");
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            if (File.Exists(path))
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                var lines = (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
                foreach (var line in lines.Reverse())
                {
                    var e = JsonDocument.Parse(line).RootElement;
                    if (e.TryGetProperty("annotations", out var a) && a.TryGetProperty(annotation, out _))
                    {
                        return e;
                    }
                }
            }
            Assert.True(DateTime.UtcNow < deadline, $"no audit event with {annotation} in {path}");
            await Task.Delay(50);
        }
    }

    /// <summary>A new connection from <paramref name="source"/> is closed before the server sends a TLS byte.</summary>
    private static async Task AssertNoTlsBytesAsync(Uri gateway, IPAddress source)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(source, 0));
        var buffer = new byte[16];
        try
        {
            await socket.ConnectAsync(gateway.Host, gateway.Port).WaitAsync(Timeout);
            // A served connection would wait for the ClientHello (and this would time out); a refused one is closed at once.
            var read = await socket.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, read);
        }
        catch (SocketException)
        {
            // reset: no bytes either
        }
    }
}
