using Portcullis.Configuration;
using static Portcullis.Audit.Tests.TestSupport;

namespace Portcullis.Audit.Tests;

public sealed class AuditSinkTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private GatewayConfiguration Configuration(Action<AuditConfiguration> audit)
    {
        var config = new GatewayConfiguration { BaseDirectory = _dir.Path, SourcePath = _dir.File("portcullis.yaml") };
        audit(config.Audit);
        return config;
    }

    private void WritePolicy(string text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n") =>
        File.WriteAllText(_dir.File("policy.yaml"), text);

    [Fact]
    public async Task Create_builds_the_configured_backends_with_paths_relative_to_the_configuration()
    {
        WritePolicy();
        File.WriteAllText(_dir.File("webhook.kubeconfig"),
            "apiVersion: v1\nkind: Config\nclusters:\n- name: r\n  cluster:\n    server: http://127.0.0.1:1/audit\n");
        await using var sink = AuditSink.Create(Configuration(a =>
        {
            a.PolicyFile = "policy.yaml";
            a.Log.Path = "logs/audit.log";
            a.Log.Mode = "blocking-strict";
            a.Log.MaxSize = 5;
            a.Webhook.ConfigFile = "webhook.kubeconfig";
            a.Webhook.Mode = "batch";
        }));

        Assert.True(sink.IsEnabled);
        Assert.Equal(2, sink.Backends.Count);
        var log = Assert.IsType<AuditLogBackend>(sink.Backends[0]);
        Assert.Equal(_dir.File("logs/audit.log"), log.Path);
        Assert.Equal(AuditMode.BlockingStrict, log.Mode);
        Assert.Equal(AuditMode.Batch, Assert.IsType<AuditWebhookBackend>(sink.Backends[1]).Mode);
        Assert.Equal(_dir.File("policy.yaml"), sink.Policy!.Source);
    }

    [Fact]
    public async Task Without_a_policy_file_audit_is_off()
    {
        await using var sink = AuditSink.Create(Configuration(a => a.Log.Path = "audit.log"));

        Assert.False(sink.IsEnabled);
        Assert.Empty(sink.Backends);
        Assert.Same(AuditRequest.Disabled, sink.BeginRequest("id", "/api", "get", null, [], "", Request("GET", "/api"), DateTime.UtcNow));
    }

    [Fact]
    public void Bad_policy_and_bad_modes_are_reported_together()
    {
        WritePolicy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n");

        var ex = Assert.Throws<ConfigurationException>(() => AuditSink.Create(Configuration(a =>
        {
            a.PolicyFile = "policy.yaml";
            a.Log.Path = "audit.log";
            a.Log.Mode = "fast";
            a.Webhook.Mode = "sometimes";
        })));

        Assert.Contains(ex.Errors, e => e.File == _dir.File("policy.yaml") && e.Line == 4 && e.Field == "rules[0].level");
        Assert.Contains(ex.Errors, e => e.Field == "audit.log.mode" && e.Message.Contains("fast", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Field == "audit.webhook.mode");
    }

    [Fact]
    public async Task UpdatePolicy_swaps_the_policy_for_new_requests()
    {
        WritePolicy();
        var backend = new MemoryBackend();
        await using var sink = new AuditSink(AuditPolicyLoader.Load(_dir.File("policy.yaml")), [backend]);
        var info = Request("GET", "/api/v1/namespaces/d/pods/p");
        var before = sink.BeginRequest("1", "/api/v1/namespaces/d/pods/p", "get", User("a"), [], "", info, DateTime.UtcNow);

        sink.UpdatePolicy(AuditPolicyLoader.Parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n", "p2.yaml"));
        var after = sink.BeginRequest("2", "/api/v1/namespaces/d/pods/p", "get", User("a"), [], "", info, DateTime.UtcNow);
        await before.EmitAsync(AuditStage.ResponseComplete).WithTimeout();
        await after.EmitAsync(AuditStage.ResponseComplete).WithTimeout();

        Assert.Equal(AuditLevel.Metadata, before.Level);
        Assert.False(after.IsEnabled);
        Assert.Single(backend.Events);
    }

    [Fact]
    public async Task Shutdown_flushes_every_batch_of_every_backend()
    {
        WritePolicy();
        var metrics = new AuditMetrics();
        var log = new AuditLogBackend(new AuditLogOptions
        {
            Path = _dir.File("audit.log"),
            Mode = AuditMode.Batch,
            Batch = AuditBatchOptions.LogDefaults with { MaxBatchWait = TimeSpan.FromMinutes(5), MaxBatchSize = 10_000 },
        }, metrics);
        var sink = new AuditSink(AuditPolicyLoader.Load(_dir.File("policy.yaml")), [log], metrics);
        var info = Request("GET", "/api/v1/namespaces/d/pods/p");
        for (var i = 0; i < 500; i++)
        {
            var audit = sink.BeginRequest($"id-{i}", "/api/v1/namespaces/d/pods/p", "get", User("a"), [], "", info, DateTime.UtcNow);
            await audit.EmitAsync(AuditStage.ResponseComplete).WithTimeout();
        }

        await sink.ShutdownAsync().WithTimeout();

        Assert.Equal(500, File.ReadAllLines(_dir.File("audit.log")).Length);
        await sink.ShutdownAsync().WithTimeout(); // idempotent
    }
}
