using System.Globalization;
using System.Net;
using System.Text;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// <c>/metrics</c> after traffic, read by a strict parser of the Prometheus text exposition format 0.0.4: HELP and TYPE
/// lines, samples <c>name{labels} value [timestamp]</c>, label value escaping, every sample in a family declared by TYPE
/// before it, families contiguous, no duplicate series, and histograms with cumulative buckets ending at +Inf = _count.
/// </summary>
public sealed class MetricsFormatTests
{
    private const string Policy = """
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Metadata
        """;

    [Fact]
    public async Task Metrics_parse_as_prometheus_text_and_carry_kube_apiservers_names_after_traffic()
    {
        await using var gw = await GatewayTestHost.StartAsync("audit:\n  policyFile: audit-policy.yaml\n  log:\n    path: audit.log\n    mode: blocking",
            files: new() { ["audit-policy.yaml"] = Policy });
        using (var client = gw.Client())
        {
            client.DefaultRequestHeaders.Authorization = new("Bearer", "token-jane");
            for (var i = 0; i < 5; i++)
            {
                using var ok = await client.GetAsync("/api/v1/namespaces/dev/pods");
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            }
            using var one = await client.GetAsync("/api/v1/namespaces/dev/pods/p1");
            using var created = await client.PostAsync("/api/v1/namespaces/dev/configmaps", new StringContent("{}", Encoding.UTF8, "application/json"));
        }
        using (var stranger = gw.Client())
        {
            stranger.DefaultRequestHeaders.Authorization = new("Bearer", "no-such-token");
            using var denied = await stranger.GetAsync("/api/v1/namespaces/dev/pods");
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        }

        // The gateway records a request's metrics when its pipeline unwinds, which can be just after the client has the
        // response (as kube-apiserver does): scrape until the last request is counted, parsing every scrape strictly.
        using var admin = new HttpClient { BaseAddress = gw.AdminUri, Timeout = TimeSpan.FromSeconds(20) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        Dictionary<string, PrometheusText.Family> families;
        while (true)
        {
            using var response = await admin.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
            families = PrometheusText.Parse(await response.Content.ReadAsStringAsync().WaitAsync(TimeSpan.FromSeconds(20)));
            double Sum(string family, Func<PrometheusText.Sample, bool> where) =>
                families.TryGetValue(family, out var f) ? f.Samples.Where(where).Sum(s => s.Value) : 0;
            var done = Sum("apiserver_request_total", s => s.Labels.GetValueOrDefault("verb") is "LIST" or "GET" or "POST") >= 7
                && Sum("authentication_attempts", _ => true) >= 8
                && Sum("apiserver_audit_event_total", _ => true) >= 7;
            if (done || DateTime.UtcNow > deadline)
            {
                break;
            }
            await Task.Delay(50); // a poll interval with a deadline, not a synchronisation sleep
        }

        var requests = families["apiserver_request_total"];
        Assert.Equal("counter", requests.Type);
        var list = requests.Samples.Where(s => s.Labels.GetValueOrDefault("verb") == "LIST" && s.Labels.GetValueOrDefault("resource") == "pods").ToList();
        Assert.Equal(5, list.Where(s => s.Labels["code"] == "200").Sum(s => s.Value));
        Assert.All(requests.Samples, s => Assert.Equal(
            ["code", "component", "dry_run", "group", "resource", "scope", "subresource", "verb", "version"], s.Labels.Keys.Order(StringComparer.Ordinal)));

        var duration = families["apiserver_request_duration_seconds"];
        Assert.Equal("histogram", duration.Type);
        Assert.Contains(duration.Samples, s => s.Name == "apiserver_request_duration_seconds_count" && s.Labels.GetValueOrDefault("verb") == "LIST" && s.Value >= 5);

        var attempts = families["authentication_attempts"];
        Assert.Equal("counter", attempts.Type);
        Assert.Contains(attempts.Samples, s => s.Labels.GetValueOrDefault("result") == "success" && s.Value >= 7);
        Assert.Contains(attempts.Samples, s => s.Labels.GetValueOrDefault("result") is "failure" or "error" && s.Value >= 1);
        Assert.Equal("histogram", families["authentication_duration_seconds"].Type);
        Assert.Contains(families["authentication_duration_seconds"].Samples, s => s.Name.EndsWith("_count", StringComparison.Ordinal) && s.Value >= 7);

        var auditEvents = families["apiserver_audit_event_total"];
        Assert.Equal("counter", auditEvents.Type);
        Assert.True(Assert.Single(auditEvents.Samples).Value >= 7, "every audited request produced an event");
        var auditErrors = families["apiserver_audit_error_total"];
        Assert.Equal("counter", auditErrors.Type);
        Assert.All(auditErrors.Samples, s => Assert.Equal(0, s.Value));
        Assert.Contains(auditErrors.Samples, s => s.Labels.GetValueOrDefault("plugin") == "log");
    }

    [Theory]
    [InlineData("# TYPE a counter\na{x=\"1\"} 1\n", true)]
    [InlineData("# HELP a with \\\\ and \\n\n# TYPE a counter\na{x=\"q\\\"\\\\\\n\"} 1 1700000000000\n", true)]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", true)]
    [InlineData("a 1\n", false)] // no TYPE
    [InlineData("# TYPE a counter\na{x=\"1\" 1\n", false)] // unterminated labels
    [InlineData("# TYPE a counter\na{x=\"\\t\"} 1\n", false)] // bad escape
    [InlineData("# TYPE a counter\na one\n", false)] // bad value
    [InlineData("# TYPE a counter\na 1\na 2\n", false)] // duplicate series
    [InlineData("# TYPE a counter\n# TYPE b counter\na 1\nb 1\n# TYPE a counter\n", false)] // TYPE twice
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", false)] // not cumulative
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n", false)] // +Inf != count
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n", false)] // no +Inf
    [InlineData("# TYPE a counter\na 1", false)] // no final newline
    public void The_parser_is_strict(string text, bool valid)
    {
        if (valid)
        {
            PrometheusText.Parse(text);
        }
        else
        {
            Assert.Throws<FormatException>(() => PrometheusText.Parse(text));
        }
    }
}

/// <summary>A strict reader of the Prometheus text exposition format, version 0.0.4.</summary>
internal static class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    public sealed class Family(string name, string type)
    {
        public string Name { get; } = name;
        public string Type { get; } = type;
        public string? Help { get; set; }
        public List<Sample> Samples { get; } = [];
    }

    private static readonly HashSet<string> Types = ["counter", "gauge", "histogram", "summary", "untyped"];

    public static Dictionary<string, Family> Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("the exposition does not end with a newline");
        }
        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        var helps = new Dictionary<string, string>(StringComparer.Ordinal);
        var closed = new HashSet<string>(StringComparer.Ordinal); // families whose samples ended
        var series = new HashSet<string>(StringComparer.Ordinal);
        Family? current = null;
        var lines = text.Split('\n');
        for (var n = 0; n < lines.Length - 1; n++)
        {
            var line = lines[n];
            var where = $"line {n + 1}: {line}";
            if (line.Length == 0)
            {
                continue;
            }
            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[0] == "#" && parts[1] is "HELP" or "TYPE")
                {
                    var name = parts[2];
                    if (!IsMetricName(name))
                    {
                        throw new FormatException($"bad metric name in {where}");
                    }
                    if (parts[1] == "HELP")
                    {
                        var help = parts.Length == 4 ? parts[3] : "";
                        CheckHelpEscapes(help, where);
                        if (!helps.TryAdd(name, help))
                        {
                            throw new FormatException($"second HELP for {name} at {where}");
                        }
                    }
                    else
                    {
                        if (parts.Length != 4 || !Types.Contains(parts[3]))
                        {
                            throw new FormatException($"bad TYPE at {where}");
                        }
                        if (families.ContainsKey(name))
                        {
                            throw new FormatException($"second TYPE for {name} at {where}");
                        }
                        if (current is not null)
                        {
                            closed.Add(current.Name);
                        }
                        current = families[name] = new Family(name, parts[3]);
                    }
                }
                continue; // other comments are allowed
            }

            var sample = ParseSample(line, where);
            var family = FamilyOf(sample.Name, families)
                ?? throw new FormatException($"sample of an undeclared family (no TYPE) at {where}");
            if (closed.Contains(family.Name) || !ReferenceEquals(family, current))
            {
                throw new FormatException($"samples of {family.Name} are not contiguous or not after its TYPE at {where}");
            }
            var key = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) + "}";
            if (!series.Add(key))
            {
                throw new FormatException($"duplicate series {key} at {where}");
            }
            if (family.Type == "counter" && (sample.Value < 0 || double.IsNaN(sample.Value)))
            {
                throw new FormatException($"negative or NaN counter at {where}");
            }
            family.Samples.Add(sample);
        }
        foreach (var (name, help) in helps)
        {
            if (families.TryGetValue(name, out var family))
            {
                family.Help = help;
            }
        }
        foreach (var family in families.Values.Where(f => f.Type == "histogram"))
        {
            CheckHistogram(family);
        }
        return families;
    }

    /// <summary>The family a sample belongs to: its own name, or for histograms and summaries the name without the suffix.</summary>
    private static Family? FamilyOf(string sample, Dictionary<string, Family> families)
    {
        if (families.TryGetValue(sample, out var exact) && exact.Type is not "histogram")
        {
            return exact;
        }
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal)
                && families.TryGetValue(sample[..^suffix.Length], out var f)
                && (f.Type == "histogram" || (f.Type == "summary" && suffix != "_bucket")))
            {
                return f;
            }
        }
        return null;
    }

    private static void CheckHistogram(Family family)
    {
        var groups = family.Samples.GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)));
        foreach (var group in groups)
        {
            var buckets = group.Where(s => s.Name == family.Name + "_bucket").ToList();
            var count = group.SingleOrDefault(s => s.Name == family.Name + "_count") ?? throw new FormatException($"{family.Name}{{{group.Key}}} has no _count");
            _ = group.SingleOrDefault(s => s.Name == family.Name + "_sum") ?? throw new FormatException($"{family.Name}{{{group.Key}}} has no _sum");
            if (group.Any(s => s.Name == family.Name))
            {
                throw new FormatException($"{family.Name} has a sample without a histogram suffix");
            }
            var bounds = buckets.Select(b => ParseValue(b.Labels.TryGetValue("le", out var le) ? le : throw new FormatException($"{family.Name}_bucket without le"))).ToList();
            if (bounds.Count == 0 || !double.IsPositiveInfinity(bounds[^1]))
            {
                throw new FormatException($"{family.Name}{{{group.Key}}} does not end with le=\"+Inf\"");
            }
            for (var i = 1; i < buckets.Count; i++)
            {
                if (!(bounds[i] > bounds[i - 1]) || buckets[i].Value < buckets[i - 1].Value)
                {
                    throw new FormatException($"{family.Name}{{{group.Key}}} buckets are not increasing and cumulative");
                }
            }
            if (buckets[^1].Value != count.Value)
            {
                throw new FormatException($"{family.Name}{{{group.Key}}} +Inf bucket {buckets[^1].Value} differs from _count {count.Value}");
            }
        }
    }

    private static Sample ParseSample(string line, string where)
    {
        var i = 0;
        while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] is '_' or ':'))
        {
            i++;
        }
        var name = line[..i];
        if (!IsMetricName(name))
        {
            throw new FormatException($"bad metric name at {where}");
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                if (i < line.Length && line[i] == '}')
                {
                    i++;
                    break;
                }
                var start = i;
                while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] == '_'))
                {
                    i++;
                }
                var label = line[start..i];
                if (label.Length == 0 || char.IsAsciiDigit(label[0]) || i + 1 >= line.Length || line[i] != '=' || line[i + 1] != '"')
                {
                    throw new FormatException($"bad label at {where}");
                }
                i += 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw new FormatException($"unterminated label value at {where}");
                    }
                    var c = line[i++];
                    if (c == '"')
                    {
                        break;
                    }
                    if (c == '\\')
                    {
                        if (i >= line.Length)
                        {
                            throw new FormatException($"dangling escape at {where}");
                        }
                        value.Append(line[i++] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new FormatException($"bad escape in label value at {where}"),
                        });
                        continue;
                    }
                    value.Append(c);
                }
                if (!labels.TryAdd(label, value.ToString()))
                {
                    throw new FormatException($"label {label} twice at {where}");
                }
                if (i < line.Length && line[i] == ',')
                {
                    i++;
                }
                else if (i >= line.Length || line[i] != '}')
                {
                    throw new FormatException($"expected , or }} at {where}");
                }
            }
        }
        if (i >= line.Length || line[i] != ' ')
        {
            throw new FormatException($"expected a space before the value at {where}");
        }
        var rest = line[(i + 1)..].Split(' ');
        if (rest.Length is < 1 or > 2)
        {
            throw new FormatException($"expected value [timestamp] at {where}");
        }
        var v = ParseValue(rest[0], where);
        if (rest.Length == 2 && !long.TryParse(rest[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
        {
            throw new FormatException($"bad timestamp at {where}");
        }
        return new Sample(name, labels, v);
    }

    private static double ParseValue(string s, string where = "")
    {
        switch (s)
        {
            case "+Inf":
                return double.PositiveInfinity;
            case "-Inf":
                return double.NegativeInfinity;
            case "NaN":
                return double.NaN;
        }
        if (s.Length == 0 || !double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || s.Contains("Infinity", StringComparison.Ordinal))
        {
            throw new FormatException($"bad value '{s}' {where}");
        }
        return v;
    }

    private static void CheckHelpEscapes(string help, string where)
    {
        for (var i = 0; i < help.Length; i++)
        {
            if (help[i] == '\\' && (i + 1 >= help.Length || help[++i] is not ('\\' or 'n')))
            {
                throw new FormatException($"bad escape in HELP at {where}");
            }
        }
    }

    private static bool IsMetricName(string name) =>
        name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':');
}
