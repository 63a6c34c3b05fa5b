using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;

namespace Portcullis.Check.Output;

/// <summary>Output formats shared by <c>check</c> and <c>probe</c>.</summary>
public enum ReportFormat
{
    Table,
    Json,
    Sarif,
    Junit,
}

/// <summary>Renders a <see cref="CheckReport"/> in each format.</summary>
public static class ReportWriters
{
    public const string SarifSchema = "https://json.schemastore.org/sarif-2.1.0.json";
    public const string InformationUri = "https://github.com/portcullis-dev/portcullis/blob/main/docs/check-and-probe.md";

    public static string Render(CheckReport report, ReportFormat format, bool color = false) => format switch
    {
        ReportFormat.Json => Json(report),
        ReportFormat.Sarif => Sarif(report),
        ReportFormat.Junit => Junit(report),
        _ => Table(report, color),
    };

    private static string Label(CheckStatus status) => status switch
    {
        CheckStatus.Pass => "PASS",
        CheckStatus.Info => "INFO",
        CheckStatus.Warn => "WARN",
        _ => "FAIL",
    };

    /// <summary>The human table, grouped by layer, with a one-line summary; ANSI colour only when asked.</summary>
    public static string Table(CheckReport report, bool color)
    {
        ArgumentNullException.ThrowIfNull(report);
        var sb = new StringBuilder();
        sb.Append(report.Tool).Append(": ").AppendLine(report.Source);
        if (report.InputError is not null)
        {
            sb.Append("input could not be read: ").AppendLine(report.InputError);
            return sb.ToString();
        }
        var idWidth = Math.Max(8, report.Findings.Select(f => f.Id.Length).DefaultIfEmpty(0).Max());
        foreach (var layer in report.Findings.GroupBy(f => f.Layer).OrderBy(g => g.Key))
        {
            sb.AppendLine();
            sb.Append("== ").AppendLine(CheckLayers.Name(layer.Key));
            foreach (var finding in layer)
            {
                var label = Label(finding.Status);
                if (color)
                {
                    var code = finding.Status switch
                    {
                        CheckStatus.Pass => "32",
                        CheckStatus.Info => "36",
                        CheckStatus.Warn => "33",
                        _ => "31;1",
                    };
                    label = $"\u001b[{code}m{label}\u001b[0m";
                }
                sb.Append("  [").Append(label).Append("] ").Append(finding.Id.PadRight(idWidth)).Append("  ").AppendLine(finding.Title);
                sb.Append("         ").Append(' ', idWidth).Append("  ").AppendLine(finding.Evidence);
                if (finding.Remediation.Length > 0)
                {
                    foreach (var line in finding.Remediation.Split('\n'))
                    {
                        sb.Append("         ").Append(' ', idWidth).Append("  fix: ").AppendLine(line);
                    }
                }
            }
        }
        sb.AppendLine();
        sb.Append(CultureInfo.InvariantCulture, $"{report.Count(CheckStatus.Pass)} passed, {report.Count(CheckStatus.Fail)} failed, {report.Count(CheckStatus.Warn)} warnings, {report.Count(CheckStatus.Info)} info");
        sb.AppendLine();
        return sb.ToString();
    }

    /// <summary>Plain JSON: summary counts and the findings.</summary>
    public static string Json(CheckReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("tool", report.Tool);
            w.WriteString("source", report.Source);
            if (report.InputError is not null)
            {
                w.WriteString("inputError", report.InputError);
            }
            w.WriteNumber("exitCode", report.ExitCode);
            w.WriteStartObject("summary");
            w.WriteNumber("pass", report.Count(CheckStatus.Pass));
            w.WriteNumber("fail", report.Count(CheckStatus.Fail));
            w.WriteNumber("warn", report.Count(CheckStatus.Warn));
            w.WriteNumber("info", report.Count(CheckStatus.Info));
            w.WriteEndObject();
            w.WriteStartArray("findings");
            foreach (var f in report.Findings)
            {
                w.WriteStartObject();
                w.WriteString("id", f.Id);
                w.WriteString("title", f.Title);
                w.WriteString("layer", CheckLayers.Name(f.Layer));
                w.WriteString("status", Label(f.Status));
                w.WriteString("evidence", f.Evidence);
                w.WriteString("remediation", f.Remediation);
                if (f.Location is not null)
                {
                    w.WriteString("location", f.Location);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>SARIF 2.1.0 for code scanning: one rule per id, one result per WARN/FAIL (PASS and INFO are not results).</summary>
    public static string Sarif(CheckReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("$schema", SarifSchema);
            w.WriteString("version", "2.1.0");
            w.WriteStartArray("runs");
            w.WriteStartObject();
            w.WriteStartObject("tool");
            w.WriteStartObject("driver");
            w.WriteString("name", "portcullis");
            w.WriteString("informationUri", InformationUri);
            w.WriteStartArray("rules");
            var rules = report.Findings.GroupBy(f => f.Id).Select(g => g.First()).ToList();
            foreach (var rule in rules)
            {
                w.WriteStartObject();
                w.WriteString("id", rule.Id);
                w.WriteString("name", RuleName(rule.Id));
                w.WriteStartObject("shortDescription");
                w.WriteString("text", rule.Title);
                w.WriteEndObject();
                var fix = report.Findings.FirstOrDefault(f => f.Id == rule.Id && f.Remediation.Length > 0)?.Remediation;
                if (fix is not null)
                {
                    w.WriteStartObject("help");
                    w.WriteString("text", fix);
                    w.WriteEndObject();
                }
                w.WriteStartObject("properties");
                w.WriteString("layer", CheckLayers.Name(rule.Layer));
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
            if (report.InputError is not null)
            {
                w.WriteStartArray("invocations");
                w.WriteStartObject();
                w.WriteBoolean("executionSuccessful", false);
                w.WriteStartArray("toolExecutionNotifications");
                w.WriteStartObject();
                w.WriteString("level", "error");
                w.WriteStartObject("message");
                w.WriteString("text", report.InputError);
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndArray();
            }
            w.WriteStartArray("results");
            foreach (var f in report.Findings.Where(f => f.Status is CheckStatus.Fail or CheckStatus.Warn))
            {
                w.WriteStartObject();
                w.WriteString("ruleId", f.Id);
                w.WriteNumber("ruleIndex", rules.FindIndex(r => r.Id == f.Id));
                w.WriteString("level", f.Status == CheckStatus.Fail ? "error" : "warning");
                w.WriteStartObject("message");
                w.WriteString("text", f.Remediation.Length > 0 ? $"{f.Title}: {f.Evidence}. Fix: {f.Remediation}" : $"{f.Title}: {f.Evidence}");
                w.WriteEndObject();
                w.WriteStartArray("locations");
                w.WriteStartObject();
                w.WriteStartObject("physicalLocation");
                w.WriteStartObject("artifactLocation");
                w.WriteString("uri", ToUri(f.Location ?? report.Source));
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static string RuleName(string id)
    {
        var sb = new StringBuilder("Cis");
        if (id.StartsWith("PC-", StringComparison.Ordinal))
        {
            sb.Clear();
        }
        foreach (var part in id.Split('-', '.'))
        {
            sb.Append(part.Length == 0 ? "" : char.ToUpperInvariant(part[0]) + part[1..].ToLowerInvariant());
        }
        return sb.ToString();
    }

    private static string ToUri(string location)
    {
        if (Uri.TryCreate(location, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http" or "file")
        {
            return uri.AbsoluteUri;
        }
        if (Path.IsPathRooted(location))
        {
            return new Uri(location).AbsoluteUri;
        }
        // A relative path stays relative (SARIF resolves it against the repository root), spaces escaped.
        return Uri.EscapeDataString(location).Replace("%2F", "/", StringComparison.Ordinal);
    }

    /// <summary>JUnit XML: one testsuite per layer, one testcase per finding; FAIL is a failure, WARN a failure too unless <paramref name="warnAsPass"/>.</summary>
    public static string Junit(CheckReport report, bool warnAsPass = false)
    {
        ArgumentNullException.ThrowIfNull(report);
        var suites = new XElement("testsuites", new XAttribute("name", report.Tool));
        if (report.InputError is not null)
        {
            suites.Add(new XElement("testsuite", new XAttribute("name", "input"), new XAttribute("tests", 1), new XAttribute("failures", 0), new XAttribute("errors", 1), new XAttribute("skipped", 0),
                new XElement("testcase", new XAttribute("name", "read input"), new XAttribute("classname", "input"),
                    new XElement("error", new XAttribute("message", report.InputError), report.InputError))));
        }
        foreach (var layer in report.Findings.GroupBy(f => f.Layer).OrderBy(g => g.Key))
        {
            var failures = layer.Count(f => f.Status == CheckStatus.Fail || (!warnAsPass && f.Status == CheckStatus.Warn));
            var suite = new XElement("testsuite",
                new XAttribute("name", CheckLayers.Name(layer.Key)),
                new XAttribute("tests", layer.Count()),
                new XAttribute("failures", failures),
                new XAttribute("errors", 0),
                new XAttribute("skipped", layer.Count(f => f.Status == CheckStatus.Info)));
            foreach (var f in layer)
            {
                var testcase = new XElement("testcase", new XAttribute("name", $"{f.Id} {f.Title}"), new XAttribute("classname", CheckLayers.Name(f.Layer)));
                if (f.Status == CheckStatus.Fail || (!warnAsPass && f.Status == CheckStatus.Warn))
                {
                    testcase.Add(new XElement("failure", new XAttribute("message", f.Evidence), new XAttribute("type", Label(f.Status)),
                        f.Remediation.Length > 0 ? $"{f.Evidence}\nfix: {f.Remediation}" : f.Evidence));
                }
                else if (f.Status == CheckStatus.Info)
                {
                    testcase.Add(new XElement("skipped", new XAttribute("message", f.Evidence)));
                }
                else
                {
                    testcase.Add(new XElement("system-out", f.Evidence));
                }
                suite.Add(testcase);
            }
            suites.Add(suite);
        }
        suites.Add(new XAttribute("tests", suites.Elements("testsuite").Sum(s => (int)s.Attribute("tests")!)),
            new XAttribute("failures", suites.Elements("testsuite").Sum(s => (int)s.Attribute("failures")!)),
            new XAttribute("errors", suites.Elements("testsuite").Sum(s => (int)s.Attribute("errors")!)));
        return new XDocument(new XDeclaration("1.0", "utf-8", null), suites).ToString() + "\n";
    }
}
