using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// Issue 15, EventRateLimit through the real kubectl: the demo (gateway in front of the sandbox API server) runs
/// EventRateLimit from its admission/ files; a Namespace limit replaces their limits by a hot reload, and
/// <c>kubectl create -f</c> of many core Events in one namespace gets kube-apiserver's TooManyRequests once the
/// namespace's burst is spent.
/// </summary>
public sealed partial class EventRateLimitKubectlTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private const int Events = 20;
    private const int Burst = 5;

    [KubectlFact]
    public async Task Kubectl_create_of_events_over_the_namespace_burst_is_refused_with_kube_apiservers_message()
    {
        await using var demo = await DemoProcess.StartAsync().WaitAsync(Timeout);
        // The demo already runs EventRateLimit from admission/admission.yaml, whose limits are in admission/eventconfig.yaml
        // (a watched file): this test's limit replaces them, as an operator would edit the file.
        var limits = Path.Combine(demo.Directory, "admission", "eventconfig.yaml");
        Assert.True(File.Exists(limits), "the demo wrote no admission/eventconfig.yaml:\n" + demo.Output);
        Assert.Contains("admissionControlConfigFile: admission/admission.yaml", File.ReadAllText(Path.Combine(demo.Directory, "portcullis.yaml")), StringComparison.Ordinal);
        File.WriteAllText(limits,
            $"apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\nlimits:\n- type: Namespace\n  qps: 1\n  burst: {Burst}\n");
        using (var admin = new HttpClient { BaseAddress = demo.Admin })
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (!(await admin.GetStringAsync("/metrics").WaitAsync(Timeout)).Contains("portcullis_config_reloads_total 1", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "the demo did not reload its configuration:\n" + demo.Output);
                await Task.Delay(100);
            }
        }

        // One kubectl sends every event of the file in turn (milliseconds apart): the first Burst are created, the
        // bucket refills 1 a second, so at most a few more get through before the rest are refused.
        var file = new StringBuilder();
        for (var i = 0; i < Events; i++)
        {
            file.Append(CultureInfo.InvariantCulture, $"""
                ---
                apiVersion: v1
                kind: Event
                metadata: {"{"}name: erl-{i}, namespace: dev{"}"}
                involvedObject: {"{"}kind: Pod, namespace: dev, name: web-1, apiVersion: v1{"}"}
                reason: Flood
                message: event {i}
                source: {"{"}component: e2e-test{"}"}
                type: Normal

                """);
        }
        var events = Path.Combine(demo.Directory, "events.yaml");
        File.WriteAllText(events, file.ToString());
        using var kubectl = new Kubectl(demo.Kubeconfig("admin"));

        var result = await kubectl.RunAsync("create", "--validate=false", "-f", events); // the sandbox serves no OpenAPI

        var created = Created().Count(result.Stdout);
        var refused = Refused().Count(result.Stderr);
        Assert.True(result.ExitCode != 0, result.ToString());
        Assert.True(created >= Burst && created < Events, result.ToString());
        Assert.Equal(Events, created + refused);
        for (var i = 0; i < Burst; i++)
        {
            Assert.Contains($"event/erl-{i} created", result.Stdout, StringComparison.Ordinal); // the burst is never refused
        }
        using var list = new Kubectl(demo.Kubeconfig("admin"));
        var stored = await list.RunAsync("get", "events", "-n", "dev", "-o", "name");
        Assert.Equal(created, stored.Stdout.Split('\n').Count(l => l.StartsWith("event/erl-", StringComparison.Ordinal)));
    }

    [GeneratedRegex(@"^event/erl-\d+ created$", RegexOptions.Multiline)]
    private static partial Regex Created();

    [GeneratedRegex("""^Error from server \(TooManyRequests\): error when creating ".*events\.yaml": Too many requests: limit reached on type Namespace for key dev$""", RegexOptions.Multiline)]
    private static partial Regex Refused();
}
