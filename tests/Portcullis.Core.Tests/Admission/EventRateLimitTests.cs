using Microsoft.Extensions.Time.Testing;
using Portcullis.Admission.RateLimiting;
using Portcullis.Configuration;

namespace Portcullis.Core.Tests.Admission;

/// <summary>
/// EventRateLimit as kube-apiserver's plugin: the AdmissionConfiguration and Configuration files (the kubernetes.io
/// examples, fixtures/admission), its validation, and token buckets per key on an injected clock.
/// </summary>
public sealed class EventRateLimitTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "admission");
    private readonly string _dir = Directory.CreateTempSubdirectory("erl-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static (List<EventRateLimitLimit>? Limits, List<ConfigError> Errors, List<string> Read) Load(string file)
    {
        var errors = new List<ConfigError>();
        var read = new List<string>();
        return (EventRateLimitFile.Load(file, errors, read), errors, read);
    }

    [Theory]
    [InlineData("k8s-website-eventratelimit-admissionconfiguration-v1.yaml")]
    [InlineData("k8s-website-eventratelimit-admissionconfiguration-v1alpha1.yaml")]
    public void The_kubernetes_io_files_load_unchanged_with_path_relative_to_the_admission_file(string fixture)
    {
        var sub = Directory.CreateDirectory(Path.Combine(_dir, "conf")).FullName;
        File.Copy(Path.Combine(Fixtures, fixture), Path.Combine(sub, "admission.yaml"));
        File.Copy(Path.Combine(Fixtures, "k8s-website-eventratelimit-config.yaml"), Path.Combine(sub, "eventconfig.yaml"));

        var (limits, errors, read) = Load(Path.Combine(sub, "admission.yaml"));

        Assert.Empty(errors);
        Assert.Equal([new EventRateLimitLimit("Namespace", 50, 100, 2000), new EventRateLimitLimit("User", 10, 50, 0)], limits);
        Assert.Equal([Path.Combine(sub, "admission.yaml"), Path.Combine(sub, "eventconfig.yaml")], read);
    }

    [Fact]
    public void An_inline_configuration_is_read()
    {
        var file = Write("admission.yaml", """
            apiVersion: apiserver.config.k8s.io/v1
            kind: AdmissionConfiguration
            plugins:
            - name: EventRateLimit
              configuration:
                apiVersion: eventratelimit.admission.k8s.io/v1alpha1
                kind: Configuration
                limits:
                - {type: Server, qps: 5, burst: 10}
                - {type: SourceAndObject, qps: 1, burst: 2, cacheSize: 100}
            """);
        var (limits, errors, _) = Load(file);
        Assert.Empty(errors);
        Assert.Equal([new EventRateLimitLimit("Server", 5, 10, 0), new EventRateLimitLimit("SourceAndObject", 1, 2, 100)], limits);
    }

    [Fact]
    public void Invalid_limits_are_refused_as_kube_apiserver_validates_them_with_file_and_line()
    {
        var file = Write("admission.yaml", "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n  path: erl.yaml\n");
        var config = Write("erl.yaml", """
            apiVersion: eventratelimit.admission.k8s.io/v1alpha1
            kind: Configuration
            limits:
            - type: Pod
              qps: 1
              burst: 1
            - type: User
              qps: 0
              burst: -1
              cacheSize: -5
            - type: Server
              qps: 1
              burst: 1
              cacheSize: -5
            - type: Namespace
              qps: 1.5
              burst: 1
              every: 2
            """);

        var (limits, errors, _) = Load(file);

        Assert.Null(limits);
        Assert.Equal(
        [
            $"{config}:4: limits[0].type: Unsupported value: \"Pod\": supported values: \"Namespace\", \"Server\", \"SourceAndObject\", \"User\"",
            $"{config}:9: limits[1].burst: Invalid value: -1: must be positive",
            $"{config}:8: limits[1].qps: Invalid value: 0: must be positive",
            $"{config}:10: limits[1].cacheSize: Invalid value: -5: must not be negative",
            $"{config}:18: limits[3].every: unknown field (type, qps, burst, cacheSize)",
            $"{config}:16: limits[3].qps: must be a whole number (int32)",
        ], errors.Select(e => e.ToString()));
    }

    [Theory]
    [InlineData("apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits: []\n", "erl.yaml:3: limits: Invalid value: null: must not be empty")]
    [InlineData("apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\n", "erl.yaml:1: limits: Invalid value: null: must not be empty")]
    [InlineData("apiVersion: v1\nkind: ConfigMap\n", "erl.yaml:1: kind: must be apiVersion eventratelimit.admission.k8s.io/v1alpha1, kind Configuration (not v1/ConfigMap)")]
    [InlineData("limits: [\n", "erl.yaml:2: (yaml)")]
    public void A_bad_configuration_file_is_refused(string text, string expected)
    {
        var file = Write("admission.yaml", "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n  path: erl.yaml\n");
        Write("erl.yaml", text);
        var (limits, errors, _) = Load(file);
        Assert.Null(limits);
        Assert.StartsWith(Path.Combine(_dir, expected), Assert.Single(errors).ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n  path: erl.yaml\n- name: ImagePolicyWebhook\n  path: ipw.yaml\n",
        "admission.yaml:6: plugins[1].name: \"ImagePolicyWebhook\": the gateway runs only the EventRateLimit admission plugin; configure ImagePolicyWebhook on kube-apiserver and remove it from this file")]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: ResourceQuota\n  path: rq.yaml\n",
        "admission.yaml:4: plugins[0].name: \"ResourceQuota\": the gateway runs only the EventRateLimit admission plugin")]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins: []\n", "admission.yaml:1: plugins: must list the EventRateLimit plugin")]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n", "admission.yaml:4: plugins.path: EventRateLimit needs a path")]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n  path: erl.yaml\n  configuration: {limits: []}\n", "admission.yaml:4: plugins.configuration: give EventRateLimit a path or an inline configuration, not both")]
    [InlineData("apiVersion: v1\nkind: Config\n", "admission.yaml:1: kind: must be an AdmissionConfiguration")]
    [InlineData("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: EventRateLimit\n  path: missing.yaml\n", "missing.yaml: (file): cannot read")]
    public void An_admission_file_that_names_another_plugin_or_no_configuration_is_refused(string text, string expected)
    {
        Write("erl.yaml", "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits: [{type: Server, qps: 1, burst: 1}]\n");
        var (limits, errors, _) = Load(Write("admission.yaml", text));
        Assert.Null(limits);
        Assert.StartsWith(Path.Combine(_dir, expected), errors[0].ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_namespace_burst_is_refused_after_burst_events_and_refills_at_qps()
    {
        var time = new FakeTimeProvider();
        var limiter = new EventRateLimiter([new EventRateLimitLimit("Namespace", 2, 5, 0)], time);

        for (var i = 0; i < 5; i++)
        {
            Assert.Empty(limiter.Admit("default", "jane", ""));
        }
        var refused = limiter.Admit("default", "jane", "");
        Assert.Equal([new EventRateLimitFailure("Namespace", "default")], refused);
        Assert.Equal("Too many requests: limit reached on type Namespace for key default", EventRateLimiter.Message(refused));
        Assert.Empty(limiter.Admit("other", "jane", "")); // another namespace has its own bucket

        time.Advance(TimeSpan.FromMilliseconds(499));
        Assert.NotEmpty(limiter.Admit("default", "jane", "")); // 2 qps: 0.998 of a token
        time.Advance(TimeSpan.FromMilliseconds(2));
        Assert.Empty(limiter.Admit("default", "jane", ""));
        Assert.NotEmpty(limiter.Admit("default", "jane", ""));
        time.Advance(TimeSpan.FromHours(1)); // refills up to burst only
        for (var i = 0; i < 5; i++)
        {
            Assert.Empty(limiter.Admit("default", "jane", ""));
        }
        Assert.NotEmpty(limiter.Admit("default", "jane", ""));
    }

    [Fact]
    public void Per_user_and_per_source_and_object_buckets_are_separate_and_every_limit_takes_a_token()
    {
        var time = new FakeTimeProvider();
        var limiter = new EventRateLimiter(
        [
            new EventRateLimitLimit("Server", 100, 4, 0),
            new EventRateLimitLimit("User", 1, 2, 0),
            new EventRateLimitLimit("SourceAndObject", 1, 3, 0),
        ], time);

        Assert.Empty(limiter.Admit("a", "bob", "kubeletnode1Podabp1"));
        Assert.Empty(limiter.Admit("a", "bob", "kubeletnode1Podabp2"));
        Assert.Equal([new EventRateLimitFailure("User", "bob")], limiter.Admit("a", "bob", "kubeletnode1Podabp1"));
        // the refused request still took a Server token: the 4th is the last one
        Assert.Empty(limiter.Admit("a", "alice", "x"));
        Assert.Equal([new EventRateLimitFailure("Server", "")], limiter.Admit("a", "alice", "z"));
        var all = limiter.Admit("a", "bob", "y");
        Assert.Equal("Too many requests: [limit reached on type Server for key , limit reached on type User for key bob]", EventRateLimiter.Message(all));
    }

    [Fact]
    public void The_cache_keeps_cacheSize_keys_and_an_evicted_key_comes_back_with_a_full_bucket()
    {
        var time = new FakeTimeProvider();
        var buckets = new BucketCache(1, 1, 2, time);
        Assert.True(buckets.TryTake("a", out _));
        Assert.False(buckets.TryTake("a", out var retry));
        Assert.Equal(1, retry);
        Assert.True(buckets.TryTake("b", out _));
        Assert.True(buckets.TryTake("c", out _)); // evicts a (least recently used)
        Assert.Equal(2, buckets.Count);
        Assert.True(buckets.TryTake("a", out _)); // full again, as kube-apiserver's LRU
        Assert.Equal(2, buckets.Count);
        Assert.Equal(4096, EventRateLimiter.DefaultCacheSize); // limitenforcer.go defaultCacheSize
    }

    [Theory]
    [InlineData("""{"kind":"Event","source":{"component":"kubelet","host":"node-1"},"involvedObject":{"kind":"Pod","namespace":"default","name":"web","uid":"u-1","apiVersion":"v1"}}""", "kubeletnode-1Poddefaultwebu-1v1")]
    [InlineData("""{"involvedObject":{"name":"web"}}""", "web")]
    [InlineData("""not json""", "")]
    [InlineData("""[1]""", "")]
    public void The_source_and_object_key_joins_the_fields_without_a_separator(string body, string key) =>
        Assert.Equal(key, EventRateLimiter.SourceAndObjectKey(System.Text.Encoding.UTF8.GetBytes(body)));
}
