using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Check.Output;
using Portcullis.Check.Probe;

namespace Portcullis.Check.Tests.Probe;

public sealed class ProbeTests
{
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(90);

    private static Finding Single(CheckReport report, string id) => Assert.Single(report.Findings, f => f.Id == id);

    private static string Describe(CheckReport report) => string.Join("\n", report.Findings.Select(f => $"{f.Status} {f.Id} {f.Evidence}"));

    private static async Task<CheckReport> ProbeAsync(Uri endpoint, X509Certificate2? ca, CancellationToken ct, bool expectUnreachable = false) =>
        await EndpointProbe.RunAsync(new ProbeOptions(endpoint, ca is null ? null : [ca], TimeSpan.FromSeconds(10), ExpectUnreachable: expectUnreachable), ct).WaitAsync(TestTimeout, ct);

    [Fact]
    public async Task Secure_server_requiring_client_certificates_has_no_failure()
    {
        using var cts = new CancellationTokenSource(TestTimeout);
        using var pki = new ProbePki();
        await using var server = await TestApiServer.StartAsync(pki, new ServerMode(RequireClientCertificate: true, AllowLegacyTls: false, AnonymousAllowed: false), cts.Token);

        var report = await ProbeAsync(server.Endpoint, pki.Ca, cts.Token);

        Assert.True(report.Count(CheckStatus.Fail) == 0, Describe(report));
        Assert.Equal(ExitCodes.Ok, report.ExitCode);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-P1-REACHABLE").Status);
        Assert.True(Single(report, "PC-P2-CLIENT-CERT").Status == CheckStatus.Pass, Describe(report));
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-P2-CERT-TRUST").Status);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-P2-CERT-NAME").Status);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-P2-CERT-EXPIRY").Status);
        Assert.True(Single(report, "PC-P2-TLS12").Status == CheckStatus.Pass, Describe(report));
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-P2-TLS13").Status);
        Assert.Equal(CheckStatus.Pass, Single(report, "PC-P3-ANON-NAMESPACES").Status);
        var weak = Single(report, "PC-P2-WEAK-CIPHERS");
        Assert.True(weak.Status == CheckStatus.Pass || (weak.Status == CheckStatus.Info && weak.Evidence.Contains("could not test", StringComparison.Ordinal)), $"{weak.Status} {weak.Evidence}");
        Assert.Contains("kube-apiserver", Single(report, "PC-P2-CERT-CHAIN").Evidence, StringComparison.Ordinal);
        Assert.Contains("IP:127.0.0.1", Single(report, "PC-P2-CERT-CHAIN").Evidence, StringComparison.Ordinal);
        foreach (var legacy in new[] { "PC-P2-TLS10", "PC-P2-TLS11" })
        {
            var finding = Single(report, legacy);
            Assert.True(finding.Status == CheckStatus.Pass || (finding.Status == CheckStatus.Info && finding.Evidence.Contains("could not test", StringComparison.Ordinal)), $"{legacy}: {finding.Status} {finding.Evidence}");
        }
    }

    [Fact]
    public async Task Server_answering_401_without_client_certificates_has_no_failure()
    {
        using var cts = new CancellationTokenSource(TestTimeout);
        using var pki = new ProbePki();
        await using var server = await TestApiServer.StartAsync(pki, new ServerMode(RequireClientCertificate: false, AllowLegacyTls: false, AnonymousAllowed: false), cts.Token);

        var report = await ProbeAsync(server.Endpoint, pki.Ca, cts.Token);

        Assert.True(report.Count(CheckStatus.Fail) == 0, Describe(report));
        Assert.Equal(CheckStatus.Info, Single(report, "PC-P2-CLIENT-CERT").Status);
        foreach (var id in new[] { "PC-P3-ANON-VERSION", "PC-P3-ANON-HEALTHZ", "PC-P3-ANON-READYZ", "PC-P3-ANON-API", "PC-P3-ANON-APIS", "PC-P3-ANON-NAMESPACES" })
        {
            var finding = Single(report, id);
            Assert.Equal(CheckStatus.Pass, finding.Status);
            Assert.Contains("401", finding.Evidence, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Insecure_server_has_each_weakness_reported()
    {
        using var cts = new CancellationTokenSource(TestTimeout);
        using var pki = new ProbePki(serverDnsNames: ["api.example.invalid"], serverIp: false, serverLifetime: TimeSpan.FromDays(5));
        await using var server = await TestApiServer.StartAsync(pki, new ServerMode(RequireClientCertificate: false, AllowLegacyTls: true, AnonymousAllowed: true), cts.Token);

        // No --ca: the probe cannot trust the test CA.
        var report = await ProbeAsync(server.Endpoint, null, cts.Token);

        Assert.Equal(ExitCodes.Failures, report.ExitCode);
        Assert.Equal(CheckStatus.Fail, Single(report, "PC-P3-ANON-NAMESPACES").Status);
        Assert.Contains("200", Single(report, "PC-P3-ANON-NAMESPACES").Evidence, StringComparison.Ordinal);
        Assert.Equal(CheckStatus.Warn, Single(report, "PC-P3-ANON-VERSION").Status);
        Assert.Equal(CheckStatus.Warn, Single(report, "PC-P3-ANON-API").Status);
        Assert.Equal(CheckStatus.Info, Single(report, "PC-P3-ANON-HEALTHZ").Status);
        Assert.Equal(CheckStatus.Warn, Single(report, "PC-P2-CERT-TRUST").Status);
        Assert.Equal(CheckStatus.Fail, Single(report, "PC-P2-CERT-NAME").Status);
        Assert.Equal(CheckStatus.Warn, Single(report, "PC-P2-CERT-EXPIRY").Status);
        Assert.Equal(CheckStatus.Info, Single(report, "PC-P2-CLIENT-CERT").Status);
        // The insecure server offers TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA; the probe must find it.
        var weak = Single(report, "PC-P2-WEAK-CIPHERS");
        Assert.True(weak.Status == CheckStatus.Fail || (weak.Status == CheckStatus.Info && weak.Evidence.Contains("could not test", StringComparison.Ordinal)), $"{weak.Status} {weak.Evidence}");
        if (weak.Status == CheckStatus.Fail)
        {
            Assert.Contains("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", weak.Evidence, StringComparison.Ordinal);
        }
        // TLS 1.0 is allowed by the server; the finding is a FAIL, or, where this machine's OpenSSL will not speak
        // TLS 1.0 at all, an honest "could not test" — never a PASS.
        foreach (var legacy in new[] { "PC-P2-TLS10", "PC-P2-TLS11" })
        {
            var finding = Single(report, legacy);
            Assert.True(finding.Status == CheckStatus.Fail || (finding.Status == CheckStatus.Info && finding.Evidence.Contains("could not test", StringComparison.Ordinal)), $"{legacy}: {finding.Status} {finding.Evidence}");
        }
    }

    [Fact]
    public async Task Plain_HTTP_endpoint_is_a_failure_and_still_probed_for_anonymous_access()
    {
        using var cts = new CancellationTokenSource(TestTimeout);
        using var pki = new ProbePki();
        await using var server = await TestApiServer.StartAsync(pki, new ServerMode(false, false, AnonymousAllowed: true, PlainHttp: true), cts.Token);

        var report = await ProbeAsync(server.Endpoint, null, cts.Token);

        Assert.Equal(CheckStatus.Fail, Single(report, "PC-P2-PLAIN-HTTP").Status);
        Assert.Equal(CheckStatus.Fail, Single(report, "PC-P3-ANON-NAMESPACES").Status);
        Assert.DoesNotContain(report.Findings, f => f.Id.StartsWith("PC-P2-TLS", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Closed_port_is_a_clear_finding()
    {
        using var cts = new CancellationTokenSource(TestTimeout);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var report = await ProbeAsync(new Uri($"https://127.0.0.1:{port}"), null, cts.Token);

        var finding = Assert.Single(report.Findings);
        Assert.Equal("PC-P1-REACHABLE", finding.Id);
        Assert.Equal(CheckStatus.Fail, finding.Status);
        Assert.Contains("connection refused", finding.Evidence, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Failures, report.ExitCode);
        OutputTests.AssertValidSarif(ReportWriters.Sarif(report), 1);
        OutputTests.AssertValidJunit(ReportWriters.Junit(report));

        var unreachableWanted = await ProbeAsync(new Uri($"https://127.0.0.1:{port}"), null, cts.Token, expectUnreachable: true);
        Assert.Equal(CheckStatus.Pass, Assert.Single(unreachableWanted.Findings).Status);
        Assert.Equal(ExitCodes.Ok, unreachableWanted.ExitCode);
    }

    [Fact]
    public async Task Probe_report_is_valid_SARIF_and_JUnit()
    {
        using var cts = new CancellationTokenSource(TestTimeout);
        using var pki = new ProbePki();
        await using var server = await TestApiServer.StartAsync(pki, new ServerMode(false, false, AnonymousAllowed: true), cts.Token);
        var report = await ProbeAsync(server.Endpoint, pki.Ca, cts.Token);
        OutputTests.AssertValidSarif(ReportWriters.Sarif(report), report.Count(CheckStatus.Fail) + report.Count(CheckStatus.Warn));
        var (tests, failures) = OutputTests.AssertValidJunit(ReportWriters.Junit(report));
        Assert.Equal(report.Findings.Count, tests);
        Assert.Equal(report.Count(CheckStatus.Fail) + report.Count(CheckStatus.Warn), failures);
    }
}
