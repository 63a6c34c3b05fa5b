using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// Issue 15, item 5: the demo turns layer 5 on. The banner's 429 line, run in bash exactly as printed (the real kubectl as
/// the demo's <c>batch</c> user), gets kube-apiserver's TooManyRequests from EventRateLimit after the User burst; and the
/// batch user's requests land in the low priority level <c>batch-low</c> (the PF header is the UID <c>portcullis
/// explain</c> gives for it), while jane's land in <c>global-default</c>.
/// </summary>
public sealed partial class DemoLayer5Tests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private const int UserBurst = 5; // the demo's admission/eventconfig.yaml: type User, burst 5, qps 1

    [KubectlFact]
    public async Task The_banners_429_command_is_refused_by_EventRateLimit_with_kube_apiservers_message()
    {
        var bash = ExternalTool.Find("bash");
        Assert.True(bash is not null, "bash must be on PATH for this test");
        await using var demo = await DemoProcess.StartAsync();
        var command = await BannerCommandAsync(demo, "batch.kubeconfig create");
        var home = Directory.CreateTempSubdirectory("portcullis-e2e-home-").FullName;
        try
        {
            // As a user runs it: in bash, from where the demo was started (the banner's paths are relative to it), with
            // kubectl on PATH and a HOME of its own (no ~/.kube of the machine).
            var run = await ExternalTool.RunAsync(bash!, ["-c", $"cd '{demo.Directory}' && {command}"],
                environment: new Dictionary<string, string>
                {
                    ["PATH"] = Path.GetDirectoryName(Kubectl.Path)! + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH"),
                    ["HOME"] = home,
                },
                timeout: Timeout);

            var created = Created().Count(run.Stdout);
            var refused = Refused().Count(run.Stderr);
            Assert.True(run.ExitCode != 0, run + "\n" + demo.Output);
            Assert.True(created >= UserBurst && created < 10, run.ToString()); // the burst, and at most a token or two refilled
            Assert.Equal(10, created + refused);
            using var admin = new HttpClient { BaseAddress = demo.Admin, Timeout = Timeout };
            var metrics = await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
            Assert.Contains($"portcullis_ratelimit_rejected_total{{type=\"eventratelimit:User\"}} {refused}", metrics, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    [Fact]
    public async Task The_batch_user_lands_in_the_low_priority_level_batch_low()
    {
        await using var demo = await DemoProcess.StartAsync();
        var fixture = DemoFixture.For(demo);
        var config = Path.Combine(demo.Directory, "portcullis.yaml");
        var explained = await PortcullisCli.RunAsync("explain", "--config", config, "--user", "batch", "--group", "jobs", "--json", "list", "pods", "-n", "dev");
        Assert.True(explained.ExitCode == 0, explained.ToString()); // allowed by rbac/30-batch.yaml
        var apf = JsonNode.Parse(explained.Stdout)!["priorityAndFairness"]!;
        Assert.Equal("batch-jobs-low-priority", (string?)apf["flowSchema"]!["name"]);
        Assert.Equal("batch-low", (string?)apf["priorityLevel"]!["name"]);
        Assert.Equal(12, (int)apf["priorityLevel"]!["nominalSeats"]!); // ceil(600 × 5 / 250)
        var batchLevelUid = (string)apf["priorityLevel"]!["uid"]!;
        var janeExplained = await PortcullisCli.RunAsync("explain", "--config", config, "--user", "jane", "--group", "developers", "--json", "list", "pods", "-n", "dev");
        var janeLevel = JsonNode.Parse(janeExplained.Stdout)!["priorityAndFairness"]!["priorityLevel"]!;
        Assert.Equal("global-default", (string?)janeLevel["name"]);

        using var batch = fixture.Http("batch");
        using var batchResponse = await batch.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);
        using var jane = fixture.Http("jane");
        using var janeResponse = await jane.GetAsync("/api/v1/namespaces/dev/pods").WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.OK, batchResponse.StatusCode);
        Assert.Equal(batchLevelUid, Assert.Single(batchResponse.Headers.GetValues("X-Kubernetes-PF-PriorityLevel-UID")));
        Assert.Equal(HttpStatusCode.OK, janeResponse.StatusCode);
        Assert.Equal((string)janeLevel["uid"]!, Assert.Single(janeResponse.Headers.GetValues("X-Kubernetes-PF-PriorityLevel-UID")));
        Assert.NotEqual(batchLevelUid, (string)janeLevel["uid"]!);
        using var admin = new HttpClient { BaseAddress = demo.Admin, Timeout = Timeout };
        var metrics = await admin.GetStringAsync("/metrics").WaitAsync(Timeout);
        Assert.Contains("apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"batch-jobs-low-priority\",priority_level=\"batch-low\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("apiserver_flowcontrol_nominal_limit_seats{priority_level=\"batch-low\"} 12", metrics, StringComparison.Ordinal);
    }

    /// <summary>The command of the banner line containing <paramref name="marker"/>, without its trailing comment.</summary>
    private static async Task<string> BannerCommandAsync(DemoProcess demo, string marker)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var line = demo.Output.Split('\n').FirstOrDefault(l => l.Contains(marker, StringComparison.Ordinal));
            if (line is not null)
            {
                var comment = line.IndexOf("   #", StringComparison.Ordinal);
                return (comment < 0 ? line : line[..comment]).Trim();
            }
            Assert.True(DateTime.UtcNow < deadline, $"no banner line with {marker}:\n{demo.Output}");
            await Task.Delay(50); // a poll interval with a deadline
        }
    }

    [GeneratedRegex(@"^event/nightly-\w+ created$", RegexOptions.Multiline)]
    private static partial Regex Created();

    [GeneratedRegex("""^Error from server \(TooManyRequests\): error when creating ".*events\.yaml": Too many requests: limit reached on type User for key batch$""", RegexOptions.Multiline)]
    private static partial Regex Refused();
}
