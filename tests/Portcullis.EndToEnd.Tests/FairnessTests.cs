using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// API Priority and Fairness under a flood, through a demo of its own with the real kubectl: the token user ci-bot sends
/// <see cref="FloodSize"/> concurrent slow lists (the sandbox's <c>?sandboxDelayMs</c>) into a priority level of
/// <see cref="Seats"/> seats that jane shares (one flow schema, ByUser); while the flood fills the seats and the queues,
/// jane's <c>kubectl get pods</c> answers without a 429 within <see cref="Bound"/>, and so does admin's
/// (system:masters, exempt). The configuration is changed by hot reload, as an operator would.
/// </summary>
public sealed class FairnessTests
{
    private const int Seats = 2;
    private const int FloodSize = 40;
    private const int DelayMs = 2000;
    private const string Level = "e2e-shared";
    private const string Schema = "e2e-flood";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    /// <summary>
    /// Fair queuing serves jane's (empty) queue at the next free seat, so each of her kubectl's requests waits at most one
    /// flood request (DelayMs); her discovery is cached before the flood, as a user's is. Without fairness she would wait
    /// behind the flood's queue (FloodSize × DelayMs / Seats = 40 s) and get a 429 at the wait limit (a quarter of the
    /// 60 s upstream.requestTimeout: 15 s). 14 s is several times what she needs and still under the wait limit.
    /// </summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(14);

    [KubectlFact]
    public async Task A_flood_from_one_user_does_not_starve_another_in_the_same_level_nor_an_exempt_one()
    {
        await using var demo = await DemoProcess.StartAsync();
        await ConfigureAsync(demo);
        using var admin = new HttpClient { Timeout = Timeout };
        await PollMetricAsync(admin, demo, "apiserver_flowcontrol_nominal_limit_seats", [$"priority_level=\"{Level}\""], v => v == Seats,
            "the reloaded level's seats");

        // Discovery cached before the flood (the helper's private --cache-dir), so the flood meets kubectl's list only.
        using var jane = new Kubectl(demo.Kubeconfig("jane"));
        var warm = await jane.RunAsync("get", "pods", "-n", "dev");
        Assert.True(warm.ExitCode == 0, warm.ToString());

        using var ca = X509CertificateLoader.LoadCertificateFromFile(demo.Pki("ca.crt"));
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = FloodSize,
            SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is not null && DemoFixture.ChainsTo(c, ca) },
        };
        using var flooder = new HttpClient(handler) { BaseAddress = demo.Gateway, Timeout = Timeout };
        flooder.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", CiBotToken(demo));
        using var stop = new CancellationTokenSource(Timeout);
        var flood = Enumerable.Range(0, FloodSize).Select(async _ =>
        {
            using var response = await flooder.GetAsync($"/api/v1/namespaces/dev/pods?sandboxDelayMs={DelayMs}", stop.Token);
            return response.StatusCode;
        }).ToList();
        try
        {
            // The flood is queued: the seats are busy and requests wait behind them.
            await PollMetricAsync(admin, demo, "apiserver_flowcontrol_current_inqueue_requests", Labels,
                v => v >= Seats, "the flood's queued requests");

            var started = DateTime.UtcNow;
            var janeResult = await jane.RunAsync("get", "pods", "-n", "dev", "--request-timeout=60s", "-v=6"); // -v=6 logs every response's status
            var janeTook = DateTime.UtcNow - started;
            var stillQueued = await MetricAsync(admin, demo, "apiserver_flowcontrol_current_inqueue_requests", Labels);

            using var root = new Kubectl(demo.Kubeconfig("admin"));
            started = DateTime.UtcNow;
            var rootResult = await root.RunAsync("get", "pods", "-n", "dev", "--request-timeout=60s");
            var rootTook = DateTime.UtcNow - started;

            Assert.True(janeResult.ExitCode == 0, janeResult.ToString());
            Assert.Contains("web-1", janeResult.Stdout, StringComparison.Ordinal);
            // kubectl retries a 429 silently: its round-tripper log shows every status it got.
            var statuses = janeResult.Stderr.Split('\n').Where(l => l.Contains("round_trippers", StringComparison.Ordinal) && l.Contains(" https://", StringComparison.Ordinal)).ToList();
            Assert.True(statuses.Count > 0 && statuses.All(l => l.Contains(" 200 OK in ", StringComparison.Ordinal)), janeResult.Stderr);
            Assert.True(janeTook < Bound, $"jane's kubectl took {janeTook}");
            Assert.True(stillQueued > 0, $"the flood was over before jane was answered ({janeTook}): the test proved nothing; flood so far: "
                + string.Join(", ", flood.Where(t => t.IsCompletedSuccessfully).GroupBy(t => t.Result).Select(g => $"{(int)g.Key} × {g.Count()}")));
            Assert.True(rootResult.ExitCode == 0, rootResult.ToString());
            Assert.True(rootTook < Bound, $"admin's kubectl took {rootTook}");
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await Task.WhenAll(flood).WaitAsync(Timeout);
            }
            catch (Exception e) when (e is OperationCanceledException or HttpRequestException)
            {
                // The flood is stopped; its outcome is not what this test measures.
            }
        }
    }

    /// <summary>
    /// Adds a small level shared by ci-bot and jane (ByUser) to the demo's APF folder (<c>apf/</c>, where the demo keeps
    /// batch-jobs-low-priority) and lowers the demo's seats in its <c>admission.priorityAndFairness</c>; both reload.
    /// </summary>
    private static async Task ConfigureAsync(DemoProcess demo)
    {
        var apf = Path.Combine(demo.Directory, "apf", "e2e-flowcontrol.yaml");
        await File.WriteAllTextAsync(apf, $$"""
            apiVersion: flowcontrol.apiserver.k8s.io/v1
            kind: PriorityLevelConfiguration
            metadata:
              name: {{Level}}
            spec:
              type: Limited
              limited:
                nominalConcurrencyShares: 50
                lendablePercent: 0
                borrowingLimitPercent: 0     # stays at its 2 seats: borrowing idle levels' seats would drain the flood early
                limitResponse:
                  type: Queue
                  queuing: {queues: 64, handSize: 8, queueLengthLimit: 50}
            ---
            apiVersion: flowcontrol.apiserver.k8s.io/v1
            kind: FlowSchema
            metadata:
              name: {{Schema}}
            spec:
              matchingPrecedence: 300
              priorityLevelConfiguration:
                name: {{Level}}
              distinguisherMethod: {type: ByUser}
              rules:
              - subjects:
                - kind: User
                  user: {name: ci-bot}
                - kind: User
                  user: {name: jane}
                resourceRules:
                - {verbs: ["*"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"], clusterScope: true}
                nonResourceRules:
                - {verbs: ["*"], nonResourceURLs: ["*"]}
            """);
        // 5 + 5 = 10 seats in all; Σ shares 245 (the suggested and mandatory levels) + 5 (the demo's batch-low) + 50:
        // ceil(10 × 50 / 300) = 2.
        var config = Path.Combine(demo.Directory, "portcullis.yaml");
        var text = await File.ReadAllTextAsync(config);
        var edited = text
            .Replace("    maxRequestsInflight: 400\n", "    maxRequestsInflight: 5\n", StringComparison.Ordinal)
            .Replace("    maxMutatingRequestsInflight: 200\n", "    maxMutatingRequestsInflight: 5\n", StringComparison.Ordinal);
        Assert.True(edited.Split("Inflight: 5\n").Length == 3, "the demo's portcullis.yaml has no admission.priorityAndFairness seats to lower:\n" + text);
        await File.WriteAllTextAsync(config, edited);
    }

    private static readonly string[] Labels = [$"flow_schema=\"{Schema}\"", $"priority_level=\"{Level}\""];

    private static string CiBotToken(DemoProcess demo)
    {
        foreach (var line in File.ReadAllLines(Path.Combine(demo.Directory, "tokens.csv")))
        {
            var fields = line.Split(',');
            if (fields.Length >= 3 && fields[1] == "ci-bot")
            {
                return fields[0];
            }
        }
        throw new InvalidOperationException("no ci-bot in the demo's tokens.csv");
    }

    /// <summary>The value of the series <paramref name="name"/> with <paramref name="labels"/> on the admin listener's /metrics (0 when absent).</summary>
    private static async Task<double> MetricAsync(HttpClient client, DemoProcess demo, string name, string[] labels)
    {
        var text = await client.GetStringAsync(new Uri(demo.Admin, "/metrics")).WaitAsync(Timeout);
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(name + "{", StringComparison.Ordinal) && labels.All(l => line.Contains(l, StringComparison.Ordinal)))
            {
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    /// <summary>Polls the series until <paramref name="done"/> (no sleep for synchronisation: a condition with a deadline).</summary>
    private static async Task PollMetricAsync(HttpClient client, DemoProcess demo, string name, string[] labels, Func<double, bool> done, string what)
    {
        var deadline = DateTime.UtcNow + Timeout;
        double last;
        while (!done(last = await MetricAsync(client, demo, name, labels)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{what}: {name} {string.Join(",", labels)} is still {last}\n{demo.Output}");
            await Task.Delay(100);
        }
    }
}
