using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Portcullis.Configuration;
using Portcullis.Gateway.Tests.Infrastructure;
using Portcullis.Tls;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// tls.revocationFile: certificates revoked by serial (with issuer), fingerprint, subject and CRL are refused in the TLS
/// handshake by the real openssl s_client and curl, while a certificate of the same CA that is not revoked is served;
/// the list is read with file:line errors; <c>portcullis revoke</c> appends entries.
/// </summary>
public sealed class RevocationTests
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(30);
    private const string EmptyList = "apiVersion: portcullis.dev/v1alpha1\nkind: RevocationList\ncertificates: []\n";

    [Theory]
    [InlineData("serial")]
    [InlineData("sha256")]
    [InlineData("subject")]
    [InlineData("crl")]
    public async Task A_revoked_certificate_fails_the_handshake_for_openssl_and_curl_and_another_of_the_same_ca_is_served(string by)
    {
        await using var gw = await GatewayTestHost.StartAsync(revocationList: EmptyList);
        var mallory = Write(gw, "mallory", gw.Pki.IssueClient("mallory", "developers"));
        var jane = Write(gw, "jane", gw.Pki.IssueClient("jane", "developers"));
        Assert.Equal("200", (await CurlAsync(gw, mallory)).Stdout); // it chains: only the list will refuse it

        switch (by)
        {
            case "serial":
                // Through the CLI, as an operator does: the entry names the serial with its issuer.
                var cli = await PortcullisCli.RunAsync("revoke", "--cert", mallory + ".crt", "--reason", "laptop stolen", "--config", gw.ConfigPath);
                Assert.True(cli.ExitCode == 0, cli.ToString());
                break;
            case "sha256":
                using (var cert = X509Certificate2.CreateFromPem(File.ReadAllText(mallory + ".crt")))
                {
                    WriteList(gw, $"- sha256: \"{Convert.ToHexStringLower(SHA256.HashData(cert.RawData))}\"\n  reason: stolen\n");
                }
                break;
            case "subject":
                WriteList(gw, "- subject: \"O = developers, CN = mallory\"\n  reason: every certificate of mallory\n");
                break;
            default:
                using (var cert = X509Certificate2.CreateFromPem(File.ReadAllText(mallory + ".crt")))
                {
                    var builder = new CertificateRevocationListBuilder();
                    builder.AddEntry(cert, DateTimeOffset.UtcNow.AddMinutes(-1), X509RevocationReason.KeyCompromise);
                    var der = builder.Build(gw.Pki.Certificate, 1, DateTimeOffset.UtcNow.AddDays(7), HashAlgorithmName.SHA256);
                    File.WriteAllText(Path.Combine(gw.Dir, "ca.crl"), PemEncoding.WriteString("X509 CRL", der));
                }
                File.WriteAllText(Path.Combine(gw.Dir, "revoked.yaml"), EmptyList + "crlFiles: [ca.crl]\n");
                break;
        }
        Assert.Empty(gw.Host.Reload());

        var forwarded = gw.Upstream.Requests.Count;
        var refusedCurl = await CurlAsync(gw, mallory);
        var refusedOpenssl = await OpensslAsync(gw, mallory);
        var forwardedAfterRefusals = gw.Upstream.Requests.Count;
        var servedCurl = await CurlAsync(gw, jane);
        var servedOpenssl = await OpensslAsync(gw, jane);

        Assert.True(refusedCurl.ExitCode != 0 && refusedCurl.Stdout == "000", refusedCurl.ToString());
        Assert.Equal("200", servedCurl.Stdout);
        Assert.DoesNotContain("HTTP/1.1", refusedOpenssl.Stdout, StringComparison.Ordinal);
        Assert.Contains("HTTP/1.1 200", servedOpenssl.Stdout, StringComparison.Ordinal);
        Assert.Equal(forwarded, forwardedAfterRefusals);
        using var admin = new HttpClient { BaseAddress = gw.AdminUri };
        Assert.Matches(@"portcullis_tls_refused_client_certificates_total\{reason=""revoked""\} [1-9]", await admin.GetStringAsync("/metrics"));
    }

    [Fact]
    public void The_fingerprint_table_the_webhook_looks_up_is_built_with_the_list()
    {
        var a = new string('a', 64);
        var list = new RevocationList([
            new RevocationEntry { Selector = "sha256", Value = a, Reason = "leaked", Origin = "certificates[0]" },
            new RevocationEntry { Selector = "sha256", Value = a, Reason = "again", Origin = "certificates[1]", Expires = DateTimeOffset.UnixEpoch },
            new RevocationEntry { Selector = "subject", Value = "CN=mallory", Reason = "stolen", Origin = "certificates[2]" },
        ]);

        // One key per fingerprint, every entry of it in list order; subject and serial entries are not in it.
        var entry = Assert.Single(list.BySha256);
        Assert.Equal(a, entry.Key);
        Assert.Equal(["leaked", "again"], entry.Value.Select(e => e.Reason));
        Assert.Empty(RevocationList.Empty.BySha256);
    }

    [Fact]
    public async Task An_edit_of_the_list_applies_to_new_handshakes_without_an_explicit_reload()
    {
        await using var gw = await GatewayTestHost.StartAsync(revocationList: EmptyList);
        var mallory = Write(gw, "mallory", gw.Pki.IssueClient("mallory"));
        Assert.Equal("200", (await CurlAsync(gw, mallory)).Stdout);

        WriteList(gw, "- subject: CN=mallory\n  reason: stolen\n");

        // The watcher polls every 200 ms here (250 ms by default) and reloads after a quiet period: well under a second
        // on an idle machine; the bound is generous because each curl is a process start on a loaded one.
        var deadline = Stopwatch.StartNew();
        while ((await CurlAsync(gw, mallory)).Stdout == "200")
        {
            var current = gw.Host.Snapshots.Current;
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30),
                $"the edited revocation list was not applied within 30 s (snapshot loaded {current.LoadedAt:O} with {current.Revocation.Entries.Count} entries)");
        }
    }

    [Fact]
    public async Task A_revocation_closes_the_open_connection_of_that_certificate_and_not_another_users()
    {
        await using var gw = await GatewayTestHost.StartAsync(revocationList: EmptyList);
        using var malloryClient = gw.Client(gw.Pki.IssueClient("mallory", "developers"));
        using var janeClient = gw.Client(gw.Pki.IssueClient("jane", "developers"));
        // An open watch on each connection (the upstream sends one event, then holds the stream open).
        using var malloryWatch = await OpenWatchAsync(malloryClient);
        using var janeWatch = await OpenWatchAsync(janeClient);

        WriteList(gw, "- subject: CN=mallory,O=developers\n  reason: stolen\n");
        Assert.Empty(gw.Host.Reload());

        var closed = await Record.ExceptionAsync(() => malloryWatch.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(closed is IOException or HttpRequestException, closed?.ToString() ?? "mallory's watch read a line after the revocation");
        gw.Upstream.SecondWatchEvent.TrySetResult();
        var janeNext = await janeWatch.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("\"two\"", janeNext, StringComparison.Ordinal);
    }

    private static async Task<StreamReader> OpenWatchAsync(HttpClient client)
    {
        var response = await client.GetAsync("/api/v1/namespaces/dev/pods?watch=true", HttpCompletionOption.ResponseHeadersRead).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Contains("\"one\"", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)), StringComparison.Ordinal);
        return reader;
    }

    [Fact]
    public void List_errors_name_the_file_line_and_field()
    {
        using var pki = new TestPki("portcullis-test-ca");
        using var other = new TestPki("another-ca");
        var dir = Directory.CreateTempSubdirectory("portcullis-rev-").FullName;
        var builder = new CertificateRevocationListBuilder();
        var der = builder.Build(other.Certificate, 1, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        File.WriteAllBytes(Path.Combine(dir, "other.crl"), der);
        var path = Path.Combine(dir, "revoked.yaml");
        var errors = new List<ConfigError>();

        var list = RevocationList.Parse("""
            apiVersion: portcullis.dev/v1alpha1
            kind: RevocationList
            certificates:
            - serial: "4f:zz"
              reason: bad hex
            - sha256: "abc"
              reason: short
            - subject: CN=jane
              reason: fine
              color: blue
            - subject: CN=joe
            crlFiles:
            - other.crl
            """, path, new X509Certificate2Collection(pki.Certificate), errors);

        Assert.Null(list);
        Assert.Contains(errors, e => e.File == path && e.Line == 4 && e.Field == "certificates[0].serial" && e.Message.Contains("must be hex", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 6 && e.Field == "certificates[1].sha256");
        Assert.Contains(errors, e => e.Line == 10 && e.Message.Contains("unknown field", StringComparison.Ordinal) && e.Field.Contains("color", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 11 && e.Field == "certificates[3].reason");
        Assert.Contains(errors, e => e.Line == 13 && e.Field == "crlFiles[0]" && e.Message.Contains("does not verify against any CA in tls.clientCAFile", StringComparison.Ordinal));
    }

    [Fact]
    public void The_matcher_keys_serials_with_their_issuer_fingerprints_and_normalised_subjects_and_honours_expiry()
    {
        using var pki = new TestPki("portcullis-test-ca");
        using var other = new TestPki("another-ca");
        using var jane = pki.IssueClient("jane", "developers");
        var facts = CertificateFacts.Of(jane);
        var now = DateTimeOffset.UtcNow;
        RevocationList List(string yaml)
        {
            var errors = new List<ConfigError>();
            var list = RevocationList.Parse("apiVersion: portcullis.dev/v1alpha1\nkind: RevocationList\ncertificates:\n" + yaml, "r.yaml", null, errors);
            Assert.Empty(errors);
            return list!;
        }
        var colons = string.Join(':', Convert.ToHexString(jane.SerialNumberBytes.Span).Chunk(2).Select(c => new string(c))).ToLowerInvariant();

        Assert.NotNull(List($"- serial: \"{colons}\"\n  reason: r\n").Match(facts, now));
        Assert.NotNull(List($"- serial: \"{jane.SerialNumber}\"\n  issuer: \"CN=portcullis-test-ca\"\n  reason: r\n").Match(facts, now));
        Assert.Null(List($"- serial: \"{jane.SerialNumber}\"\n  issuer: \"CN=another-ca\"\n  reason: r\n").Match(facts, now));
        Assert.NotNull(List("- subject: /O=developers/CN=jane\n  reason: r\n").Match(facts, now));
        Assert.Null(List("- subject: CN=jane\n  reason: r\n").Match(facts, now)); // a different name: no O
        Assert.Null(List($"- subject: CN=jane,O=developers\n  reason: r\n  expires: {now.AddMinutes(-1):O}\n").Match(facts, now));
        Assert.NotNull(List($"- subject: CN=jane,O=developers\n  reason: r\n  expires: {now.AddMinutes(1):O}\n").Match(facts, now));
    }

    [Fact]
    public async Task Revoke_appends_to_an_existing_list_keeping_its_comments_entries_and_crl_files()
    {
        using var pki = new TestPki("portcullis-test-ca");
        var dir = Directory.CreateTempSubdirectory("portcullis-rev-").FullName;
        TestPki.WritePem(pki.IssueClient("jane"), Path.Combine(dir, "jane.crt"), Path.Combine(dir, "jane.key"));
        var path = Path.Combine(dir, "revoked.yaml");
        File.WriteAllText(path, """
            # our revoked certificates
            apiVersion: portcullis.dev/v1alpha1
            kind: RevocationList
            certificates:
              - subject: CN=joe   # left the company
                reason: offboarded
            # CRLs from the CA team
            crlFiles: [ca.crl]
            """);

        var bySha = await PortcullisCli.RunAsync("revoke", "--cert", Path.Combine(dir, "jane.crt"), "--reason", "stolen \"laptop\"", "--file", path, "--by", "sha256", "--expires", "2030-01-01T00:00:00Z");
        var bySubject = await PortcullisCli.RunAsync("revoke", "--cert", Path.Combine(dir, "jane.crt"), "--reason", "all of jane", "--file", path, "--by", "subject");

        Assert.True(bySha.ExitCode == 0, bySha.ToString());
        Assert.True(bySubject.ExitCode == 0, bySubject.ToString());
        var text = File.ReadAllText(path);
        Assert.Contains("# our revoked certificates", text, StringComparison.Ordinal);
        Assert.Contains("# left the company", text, StringComparison.Ordinal);
        Assert.Contains("crlFiles: [ca.crl]", text, StringComparison.Ordinal);
        var errors = new List<ConfigError>();
        var doc = new YamlBinder(path, errors).Bind<RevocationList.RevocationListDocument>(new YamlBinder(path, errors).Parse(text)[0].RootNode, "");
        Assert.Empty(errors);
        Assert.Equal(["", "", "CN=jane"], doc.Certificates.Select(c => c.Subject == "CN=joe" ? "" : c.Subject));
        Assert.Equal("stolen \"laptop\"", doc.Certificates[1].Reason);
        Assert.Equal(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero), doc.Certificates[1].Expires);
        Assert.Equal(["ca.crl"], doc.CrlFiles);
    }

    [Fact]
    public async Task Revoke_creates_a_missing_file_and_refuses_usage_errors_with_exit_2()
    {
        using var pki = new TestPki("portcullis-test-ca");
        var dir = Directory.CreateTempSubdirectory("portcullis-rev-").FullName;
        var cert = Path.Combine(dir, "jane.crt");
        TestPki.WritePem(pki.IssueClient("jane"), cert, Path.Combine(dir, "jane.key"));
        var path = Path.Combine(dir, "new", "revoked.yaml");

        var created = await PortcullisCli.RunAsync("revoke", "--cert", cert, "--reason", "stolen", "--file", path);
        var neither = await PortcullisCli.RunAsync("revoke", "--cert", cert, "--reason", "stolen");
        var both = await PortcullisCli.RunAsync("revoke", "--cert", cert, "--reason", "stolen", "--file", path, "--config", path);
        var noReason = await PortcullisCli.RunAsync("revoke", "--cert", cert, "--file", path);
        var badBy = await PortcullisCli.RunAsync("revoke", "--cert", cert, "--reason", "x", "--file", path, "--by", "color");
        var badExpiry = await PortcullisCli.RunAsync("revoke", "--cert", cert, "--reason", "x", "--file", path, "--expires", "someday");
        var notACert = await PortcullisCli.RunAsync("revoke", "--cert", path, "--reason", "x", "--file", path);

        Assert.True(created.ExitCode == 0, created.ToString());
        var errors = new List<ConfigError>();
        var list = RevocationList.Load(path, null, errors);
        Assert.Empty(errors);
        using var jane = X509Certificate2.CreateFromPem(File.ReadAllText(cert));
        Assert.NotNull(list!.Match(CertificateFacts.Of(jane), DateTimeOffset.UtcNow));
        Assert.All([neither, both, noReason, badBy, badExpiry, notACert], r => Assert.True(r.ExitCode == 2, r.ToString()));
        Assert.Contains("exactly one of --file and --config", neither.Stderr, StringComparison.Ordinal);
        Assert.Contains("--expires", badExpiry.Stderr, StringComparison.Ordinal);
    }

    private static string Write(GatewayTestHost gw, string name, X509Certificate2 certificate)
    {
        var stem = Path.Combine(gw.Dir, name);
        TestPki.WritePem(certificate, stem + ".crt", stem + ".key");
        File.WriteAllText(Path.Combine(gw.Dir, "ca.crt"), gw.Pki.CertificatePem);
        return stem;
    }

    private static void WriteList(GatewayTestHost gw, string entries) =>
        File.WriteAllText(Path.Combine(gw.Dir, "revoked.yaml"), "apiVersion: portcullis.dev/v1alpha1\nkind: RevocationList\ncertificates:\n" + entries);

    private static Task<(int ExitCode, string Stdout, string Stderr)> CurlAsync(GatewayTestHost gw, string stem) =>
        RunAsync("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "15",
            "--cacert", Path.Combine(gw.Dir, "ca.crt"), "--cert", stem + ".crt", "--key", stem + ".key",
            "--resolve", $"localhost:{gw.Uri.Port}:127.0.0.1", $"https://localhost:{gw.Uri.Port}/api/v1/pods"], null);

    private static Task<(int ExitCode, string Stdout, string Stderr)> OpensslAsync(GatewayTestHost gw, string stem) =>
        RunAsync("/usr/bin/openssl", ["s_client", "-quiet", "-connect", $"127.0.0.1:{gw.Uri.Port}", "-servername", "localhost",
            "-CAfile", Path.Combine(gw.Dir, "ca.crt"), "-cert", stem + ".crt", "-key", stem + ".key"],
            "GET /api/v1/pods HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string file, string[] args, string? stdin)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        using var process = Process.Start(info)!;
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(ProcessTimeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, (await stdout.WaitAsync(ProcessTimeout)).Trim(), await stderr.WaitAsync(ProcessTimeout));
    }
}
