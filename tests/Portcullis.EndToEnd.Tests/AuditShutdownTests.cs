using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Portcullis.EndToEnd.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// Nothing lost across a graceful shutdown in batch mode: the real <c>portcullis demo</c> process (sandbox upstream and
/// gateway) with its audit log in batch mode, 50 workers firing requests continuously, SIGTERM in the middle. After exit
/// code 0, every request the gateway answered — whatever the status — has its event, by Audit-ID, in the log.
/// </summary>
public sealed class AuditShutdownTests(ITestOutputHelper output)
{
    private const int Workers = 50;

    /// <summary>The demo's own configuration (DemoManifests.GatewayConfiguration) with the audit log in batch mode.</summary>
    private const string BatchConfiguration = """
        apiVersion: portcullis.dev/v1alpha1
        kind: GatewayConfiguration
        listeners:
        - address: 127.0.0.1:0
        network:
          allow: [127.0.0.0/8]
        tls:
          certFile: pki/gateway.crt
          keyFile: pki/gateway.key
          clientCAFile: pki/ca.crt
        authentication:
          anonymous:
            enabled: false
          tokenAuthFile: tokens.csv
        authorization:
          modes: [RBAC]
          rbac:
            manifests: [rbac]
        audit:
          policyFile: audit-policy.yaml
          log:
            path: audit.log
            mode: batch
        upstream:
          kubeconfig: upstream.kubeconfig
          identity: Impersonate
        admin:
          address: 127.0.0.1:0

        """;

    [Fact]
    public async Task Sigterm_in_the_middle_of_load_in_batch_mode_loses_no_answered_request()
    {
        var directory = Directory.CreateTempSubdirectory("portcullis-e2e-audit-").FullName;
        try
        {
            // The demo writes only the files that are missing, so it runs this configuration.
            File.WriteAllText(Path.Combine(directory, "portcullis.yaml"), BatchConfiguration);
            await using var demo = await DemoProcess.StartAsync(directory);
            Assert.Equal(BatchConfiguration, File.ReadAllText(Path.Combine(directory, "portcullis.yaml")));

            using var client = new HttpClient(Handler(directory)) { BaseAddress = demo.Gateway, Timeout = TimeSpan.FromSeconds(20) };
            var answered = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
            var statuses = new ConcurrentDictionary<int, int>();
            var failures = 0;
            var signalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var next = -1;

            var workers = Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
            {
                while (!demo.Process.HasExited)
                {
                    var i = Interlocked.Increment(ref next);
                    try
                    {
                        using var response = await client.GetAsync($"/api/v1/namespaces/default/pods?i={i}");
                        statuses.AddOrUpdate((int)response.StatusCode, 1, (_, n) => n + 1);
                        Assert.True(response.Headers.TryGetValues("Audit-ID", out var ids), $"response {(int)response.StatusCode} without Audit-ID");
                        Assert.True(answered.TryAdd(Assert.Single(ids), i), "an Audit-ID answered two requests");
                        if (answered.Count >= 3000)
                        {
                            enough.TrySetResult();
                        }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                        Interlocked.Increment(ref failures);
                        if (signalled.Task.IsCompleted)
                        {
                            return; // the gateway has stopped listening
                        }
                        throw;
                    }
                }
            })).ToList();

            await Task.WhenAny(enough.Task, Task.WhenAll(workers)).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.False(workers.Any(w => w.IsFaulted), "a worker failed before SIGTERM:\n" + demo.Output);
            var beforeSignal = answered.Count;
            signalled.SetResult();
            var exit = await demo.SignalAndWaitAsync("TERM");
            await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30));

            output.WriteLine($"answered {answered.Count} ({beforeSignal} before SIGTERM), statuses {string.Join(", ", statuses.Select(s => $"{s.Key}×{s.Value}"))}, {failures} failed without an answer");
            Assert.True(exit == 0, demo.Output);
            Assert.True(statuses.GetValueOrDefault(200) >= beforeSignal, "requests before SIGTERM should succeed");

            var logged = new HashSet<string>(StringComparer.Ordinal);
            foreach (var line in File.ReadAllLines(Path.Combine(directory, "audit.log")))
            {
                using var doc = JsonDocument.Parse(line);
                var e = doc.RootElement;
                Assert.Equal("ResponseComplete", e.GetProperty("stage").GetString()); // the demo's policy omits RequestReceived
                Assert.True(logged.Add(e.GetProperty("auditID").GetString()!), "an auditID is in the log twice");
            }
            var missing = answered.Keys.Where(id => !logged.Contains(id)).ToList();
            Assert.True(missing.Count == 0, $"{missing.Count} of {answered.Count} answered requests are not in the audit log, e.g. {string.Join(", ", missing.Take(5))}\n{demo.Output}");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The demo admin's client certificate (system:masters), trusting only the demo CA.</summary>
    private static SocketsHttpHandler Handler(string directory)
    {
        var pki = Path.Combine(directory, "pki");
        var ca = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(pki, "ca.crt"));
        using var pem = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "admin.crt"), Path.Combine(pki, "admin.key"));
        var admin = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        return new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [admin],
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && DemoFixture.ChainsTo(certificate, ca),
            },
        };
    }
}
