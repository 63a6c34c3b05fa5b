using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Portcullis.Gateway.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Bounded load on loopback: 20,000 requests over 50 keep-alive HTTP/1.1 connections through the real gateway in each
/// audit mode. The policy omits RequestReceived and audits everything at Metadata, so every answered request must have
/// exactly one ResponseComplete event, with the Audit-ID its response carried, on a valid JSON line.
/// </summary>
public sealed class AuditLoadTests(ITestOutputHelper output)
{
    private const int Requests = 20_000;
    private const int Workers = 50;

    private const string Policy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Metadata
        """;

    [Theory]
    [InlineData("blocking")]
    [InlineData("blocking-strict")]
    [InlineData("batch")]
    public async Task Twenty_thousand_requests_over_fifty_connections_give_exactly_one_event_each(string mode)
    {
        // API Priority and Fairness stays on, with seats for all 50 workers: by default jane's flow (global-default) has
        // 49 seats and, with this host's 2 s upstream.requestTimeout, waits at most 0.5 s for one; on a loaded machine a
        // worker could get a 429 that this audit test is not about (PriorityAndFairnessTests covers those).
        await using var gw = await GatewayTestHost.StartAsync(
            $"admission:\n  priorityAndFairness: {{maxRequestsInflight: 4000, maxMutatingRequestsInflight: 200}}\naudit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: {mode}",
            files: new() { ["audit-policy.yaml"] = Policy });
        using var client = gw.Client();
        client.DefaultRequestHeaders.Authorization = new("Bearer", "token-jane");

        var ids = new ConcurrentDictionary<string, int>();
        var codes = new ConcurrentDictionary<HttpStatusCode, int>();
        var next = -1;
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < Requests)
            {
                using var response = await client.GetAsync($"/api/v1/namespaces/load/pods?i={i}", HttpCompletionOption.ResponseContentRead);
                codes.AddOrUpdate(response.StatusCode, 1, (_, n) => n + 1);
                var id = Assert.Single(response.Headers.GetValues("Audit-ID"));
                Assert.True(ids.TryAdd(id, i), $"the gateway answered two requests with Audit-ID {id}");
            }
        }));
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(120));
        var load = clock.Elapsed;
        await gw.Host.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"{mode}: {Requests} requests in {load.TotalSeconds:F1} s ({Requests / load.TotalSeconds:F0} req/s), stop {(clock.Elapsed - load).TotalSeconds:F1} s");

        Assert.Equal(Requests, codes.GetValueOrDefault(HttpStatusCode.OK));
        Assert.Equal(Requests, ids.Count);

        var lines = File.ReadAllLines(Path.Combine(gw.Dir, "audit.log"));
        Assert.Equal(Requests, lines.Length);
        var logged = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line); // throws on any invalid line
            var e = doc.RootElement;
            var id = e.GetProperty("auditID").GetString()!;
            Assert.True(logged.Add(id), $"auditID {id} is in the log twice");
            Assert.Equal("ResponseComplete", e.GetProperty("stage").GetString());
            Assert.Equal("Metadata", e.GetProperty("level").GetString());
            Assert.Equal(200, e.GetProperty("responseStatus").GetProperty("code").GetInt32());
        }
        Assert.True(logged.SetEquals(ids.Keys), "the logged auditIDs are not the Audit-IDs the responses carried");
    }
}
