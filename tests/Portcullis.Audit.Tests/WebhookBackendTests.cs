using System.Globalization;
using System.Net;
using System.Text;
using Portcullis.Configuration;
using static Portcullis.Audit.Tests.TestSupport;

namespace Portcullis.Audit.Tests;

public sealed class WebhookBackendTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private const string Token = "s3cr3t-token-value";

    private string Kubeconfig(Uri server, string userYaml = $"    token: {Token}\n", string clusterExtra = "")
    {
        var path = _dir.File("webhook.kubeconfig");
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: other
              cluster:
                server: https://example.invalid/
            - name: receiver
              cluster:
                server: {server}
            {clusterExtra}
            users:
            - name: gateway
              user:
            {userYaml}
            contexts:
            - name: audit
              context:
                cluster: receiver
                user: gateway
            current-context: audit
            """);
        return path;
    }

    private static AuditEvent Event(string id) => new()
    {
        Level = AuditLevel.Metadata,
        AuditId = id,
        Stage = AuditStage.ResponseComplete,
        RequestUri = "/api/v1/namespaces/default/pods",
        Verb = "list",
        User = User("alice"),
        RequestReceivedTimestamp = DateTime.UtcNow,
        StageTimestamp = DateTime.UtcNow,
    };

    private static AuditWebhookOptions Options(string kubeconfig, AuditMode mode) => new()
    {
        KubeconfigPath = kubeconfig,
        Mode = mode,
        Batch = AuditBatchOptions.WebhookDefaults with { MaxBatchWait = TimeSpan.FromMilliseconds(50), ThrottleEnabled = false },
        InitialBackoff = TimeSpan.FromMilliseconds(20),
        Attempts = 5,
        RequestTimeout = TimeSpan.FromSeconds(10),
    };

    [Fact]
    public async Task A_receiver_that_fails_the_first_attempts_gets_every_event_exactly_once_in_batch_mode()
    {
        await using var receiver = await WebhookReceiver.StartAsync().WithTimeout();
        receiver.FailFirst = 3;
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        var backend = new AuditWebhookBackend(Options(Kubeconfig(receiver.Url), AuditMode.Batch), metrics);
        const int count = 1000;

        for (var i = 0; i < count; i++)
        {
            await backend.ProcessAsync([Event(i.ToString(CultureInfo.InvariantCulture))]).WithTimeout();
        }
        await backend.ShutdownAsync().WithTimeout();

        Assert.Equal(count, receiver.Accepted.Count);
        Assert.All(receiver.Accepted.Values, n => Assert.Equal(1, n));
        Assert.True(receiver.Calls >= 3 + 3, $"{receiver.Calls} calls"); // three failures, then at least three batches of <= 400
        Assert.Equal(0, counts.Errors("webhook"));
        Assert.InRange(receiver.LargestBatch, 1, 400);
        Assert.All(receiver.Authorization, h => Assert.Equal("Bearer " + Token, h));
    }

    [Fact]
    public async Task Blocking_mode_waits_through_the_retries()
    {
        await using var receiver = await WebhookReceiver.StartAsync().WithTimeout();
        receiver.FailFirst = 2;
        receiver.FailStatus = 429;
        await using var backend = new AuditWebhookBackend(Options(Kubeconfig(receiver.Url), AuditMode.Blocking), new AuditMetrics());

        await backend.ProcessAsync([Event("only")]).WithTimeout();

        Assert.Equal(1, receiver.Accepted["only"]);
        Assert.Equal(3, receiver.Calls);
    }

    [Fact]
    public async Task Giving_up_is_an_error_in_blocking_mode_and_a_count_in_batch_mode_and_never_shows_the_token()
    {
        await using var receiver = await WebhookReceiver.StartAsync().WithTimeout();
        receiver.FailFirst = int.MaxValue;
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        var reported = new List<AuditBackendError>();
        var kubeconfig = Kubeconfig(receiver.Url);
        await using var blocking = new AuditWebhookBackend(Options(kubeconfig, AuditMode.Blocking) with { Attempts = 3 }, metrics, e => { lock (reported) { reported.Add(e); } });
        await using var batch = new AuditWebhookBackend(Options(kubeconfig, AuditMode.Batch) with { Attempts = 2 }, metrics, e => { lock (reported) { reported.Add(e); } });

        var ex = await Assert.ThrowsAsync<AuditBackendException>(() => blocking.ProcessAsync([Event("a")]).AsTask()).WithTimeout();
        await batch.ProcessAsync([Event("b"), Event("c")]).WithTimeout();
        await batch.FlushAsync().WithTimeout();

        Assert.Contains("HTTP 500", ex.Message, StringComparison.Ordinal);
        Assert.Contains("3 attempt", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, counts.Errors("webhook"));
        Assert.Equal(5, receiver.Calls);
        lock (reported)
        {
            Assert.Equal(2, reported.Count);
            Assert.All(reported, r => Assert.DoesNotContain(Token, r.Message + r.Exception, StringComparison.Ordinal));
        }
        Assert.DoesNotContain(Token, ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_error_is_not_retried()
    {
        await using var receiver = await WebhookReceiver.StartAsync().WithTimeout();
        receiver.FailFirst = 1;
        receiver.FailStatus = 403;
        await using var backend = new AuditWebhookBackend(Options(Kubeconfig(receiver.Url), AuditMode.Blocking), new AuditMetrics());

        await Assert.ThrowsAsync<AuditBackendException>(() => backend.ProcessAsync([Event("x")]).AsTask()).WithTimeout();

        Assert.Equal(1, receiver.Calls);
    }

    [Fact]
    public async Task An_unreachable_receiver_is_retried_then_reported()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        await using var backend = new AuditWebhookBackend(
            Options(Kubeconfig(new Uri($"http://127.0.0.1:{port}/audit")), AuditMode.BlockingStrict) with { Attempts = 2 }, metrics);

        var ex = await Assert.ThrowsAsync<AuditBackendException>(() => backend.ProcessAsync([Event("x")]).AsTask()).WithTimeout();

        Assert.Contains("2 attempt", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, counts.Errors("webhook"));
    }

    [Fact]
    public async Task Https_with_the_kubeconfigs_CA_and_client_certificate()
    {
        using var pki = new TestPki("audit-test-ca");
        using var serverCert = pki.IssueServer();
        using var clientCert = pki.IssueClient("portcullis", "gateways");
        await using var receiver = await WebhookReceiver.StartAsync(serverCert, requireClientCertificate: true).WithTimeout();
        TestPki.WritePem(clientCert, _dir.File("client.crt"), _dir.File("client.key"));
        var caData = Convert.ToBase64String(Encoding.UTF8.GetBytes(pki.CertificatePem));
        var kubeconfig = Kubeconfig(receiver.Url, "    client-certificate: client.crt\n    client-key: client.key\n",
            $"    certificate-authority-data: {caData}");

        await using var backend = new AuditWebhookBackend(Options(kubeconfig, AuditMode.Blocking), new AuditMetrics());
        await backend.ProcessAsync([Event("tls")]).WithTimeout();

        Assert.Equal(1, receiver.Accepted["tls"]);
        Assert.Equal(clientCert.Subject, Assert.Single(receiver.ClientSubjects));
        Assert.Contains("CN=portcullis", clientCert.Subject, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_certificate_from_another_CA_is_refused()
    {
        using var impostor = new TestPki("impostor-ca");
        using var serverCert = impostor.IssueServer();
        await using var receiver = await WebhookReceiver.StartAsync(serverCert).WithTimeout();
        using var otherCa = new TestPki("other-ca");
        var caData = Convert.ToBase64String(Encoding.UTF8.GetBytes(otherCa.CertificatePem));
        var kubeconfig = Kubeconfig(receiver.Url, clusterExtra: $"    certificate-authority-data: {caData}");
        await using var backend = new AuditWebhookBackend(Options(kubeconfig, AuditMode.Blocking) with { Attempts = 1 }, new AuditMetrics());

        await Assert.ThrowsAsync<AuditBackendException>(() => backend.ProcessAsync([Event("x")]).AsTask()).WithTimeout();

        Assert.Equal(0, receiver.Calls);
    }

    [Fact]
    public void A_kubeconfig_without_a_usable_server_names_the_file()
    {
        var path = _dir.File("bad.kubeconfig");
        File.WriteAllText(path, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ftp://x\n");

        var ex = Assert.Throws<ConfigurationException>(() => new AuditWebhookBackend(new AuditWebhookOptions { KubeconfigPath = path }, new AuditMetrics()));

        var error = Assert.Single(ex.Errors);
        Assert.Equal(path, error.File);
        Assert.Equal("clusters.cluster.server", error.Field);
        Assert.Equal(6, error.Line);
    }

    [Fact]
    public async Task Falcos_audit_webhook_kubeconfig_works_once_its_placeholder_is_filled_in()
    {
        await using var receiver = await WebhookReceiver.StartAsync().WithTimeout();
        var text = File.ReadAllText(Fixture("webhook/falco-k8saudit-audit-webhook-config.yaml"));
        var path = _dir.File("falco.kubeconfig");
        File.WriteAllText(path, text.Replace("http://$FALCO_SERVICE_CLUSTERIP:8765/k8s-audit", receiver.Url.ToString(), StringComparison.Ordinal));
        await using var backend = new AuditWebhookBackend(Options(path, AuditMode.Blocking), new AuditMetrics());

        await backend.ProcessAsync([Event("falco")]).WithTimeout();

        Assert.Equal(1, receiver.Accepted["falco"]);
        Assert.Equal("", Assert.Single(receiver.Authorization)); // users: [] means no credentials
        var unfilled = Assert.Throws<ConfigurationException>(() =>
            new AuditWebhookBackend(new AuditWebhookOptions { KubeconfigPath = Fixture("webhook/falco-k8saudit-audit-webhook-config.yaml") }, new AuditMetrics()));
        Assert.Equal(6, Assert.Single(unfilled.Errors).Line);
    }

    [Fact]
    public void Credential_plugins_are_refused_rather_than_silently_sending_no_credentials()
    {
        var text = File.ReadAllText(Fixture("webhook/gce-audit-webhook.kubeconfig.yaml"));
        var path = _dir.File("gce.kubeconfig");
        File.WriteAllText(path, text.Replace("${GCP_AUDIT_URL}", "https://audit.example.com/v1", StringComparison.Ordinal));

        var ex = Assert.Throws<ConfigurationException>(() => new AuditWebhookBackend(new AuditWebhookOptions { KubeconfigPath = path }, new AuditMetrics()));

        var error = Assert.Single(ex.Errors);
        Assert.Equal("users.user.auth-provider", error.Field);
        Assert.Equal(path, error.File);
    }
}
