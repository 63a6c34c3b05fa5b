using System.Text.Json;
using System.Xml.Linq;
using Portcullis.Check.Output;

namespace Portcullis.Check.Tests;

public sealed class OutputTests
{
    private static CheckReport Mixed() => new("portcullis check", "/etc/kubernetes/manifests/kube-apiserver.yaml",
    [
        new Finding("1.2.1", "Ensure that the --anonymous-auth argument is set to false", CheckLayer.Authentication, CheckStatus.Fail, "--anonymous-auth not set", "--anonymous-auth=false"),
        new Finding("1.2.2", "Ensure that the --token-auth-file parameter is not set", CheckLayer.Authentication, CheckStatus.Pass, "--token-auth-file not set", ""),
        new Finding("PC-L1-BIND", "kube-apiserver is not exposed on every interface", CheckLayer.Network, CheckStatus.Warn, "--bind-address not set", "--bind-address=10.0.0.1"),
        new Finding("PC-L6-AUDIT-POLICY", "The audit policy file is readable and valid", CheckLayer.Audit, CheckStatus.Fail, "policy.yaml: line 3: not valid YAML", "fix it", "/etc/kubernetes/audit policy.yaml"),
        new Finding("1.2.28", "Ensure that encryption providers are appropriately configured", CheckLayer.Tls, CheckStatus.Info, "file not found", ""),
    ]);

    /// <summary>The properties SARIF 2.1.0 requires (and GitHub code scanning reads), checked structurally.</summary>
    internal static void AssertValidSarif(string sarif, int expectedResults)
    {
        using var doc = JsonDocument.Parse(sarif);
        var root = doc.RootElement;
        Assert.Equal("2.1.0", root.GetProperty("version").GetString());
        Assert.Equal(ReportWriters.SarifSchema, root.GetProperty("$schema").GetString());
        var run = Assert.Single(root.GetProperty("runs").EnumerateArray().ToList());
        var driver = run.GetProperty("tool").GetProperty("driver");
        Assert.False(string.IsNullOrEmpty(driver.GetProperty("name").GetString()));
        var ruleIds = driver.GetProperty("rules").EnumerateArray().Select(r => r.GetProperty("id").GetString()!).ToList();
        Assert.Equal(ruleIds.Count, ruleIds.Distinct().Count());
        var results = run.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(expectedResults, results.Count);
        foreach (var result in results)
        {
            var ruleId = result.GetProperty("ruleId").GetString()!;
            Assert.Contains(ruleId, ruleIds);
            Assert.Equal(ruleId, ruleIds[result.GetProperty("ruleIndex").GetInt32()]);
            Assert.Contains(result.GetProperty("level").GetString(), new[] { "none", "note", "warning", "error" });
            Assert.False(string.IsNullOrEmpty(result.GetProperty("message").GetProperty("text").GetString()));
            var location = Assert.Single(result.GetProperty("locations").EnumerateArray().ToList());
            var uri = location.GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString();
            Assert.True(Uri.TryCreate(uri, UriKind.RelativeOrAbsolute, out _), uri);
            Assert.DoesNotContain(' ', uri!);
        }
    }

    /// <summary>Parses JUnit XML and checks that the declared counts match the elements.</summary>
    internal static (int Tests, int Failures) AssertValidJunit(string xml)
    {
        var doc = XDocument.Parse(xml);
        var suites = doc.Root!;
        Assert.Equal("testsuites", suites.Name.LocalName);
        var tests = 0;
        var failures = 0;
        foreach (var suite in suites.Elements("testsuite"))
        {
            var cases = suite.Elements("testcase").ToList();
            Assert.Equal((int)suite.Attribute("tests")!, cases.Count);
            Assert.Equal((int)suite.Attribute("failures")!, cases.Count(c => c.Element("failure") is not null));
            Assert.Equal((int)suite.Attribute("errors")!, cases.Count(c => c.Element("error") is not null));
            Assert.Equal((int)suite.Attribute("skipped")!, cases.Count(c => c.Element("skipped") is not null));
            Assert.All(cases, c => Assert.False(string.IsNullOrEmpty((string?)c.Attribute("name"))));
            tests += cases.Count;
            failures += (int)suite.Attribute("failures")!;
        }
        Assert.Equal(tests, (int)suites.Attribute("tests")!);
        Assert.Equal(failures, (int)suites.Attribute("failures")!);
        return (tests, failures);
    }

    [Fact]
    public void Sarif_has_the_required_2_1_0_properties()
    {
        AssertValidSarif(ReportWriters.Sarif(Mixed()), expectedResults: 3);
    }

    [Fact]
    public void Sarif_of_a_real_check_is_valid_and_has_one_result_per_FAIL_or_WARN()
    {
        var report = ConfigurationCheck.FromManifest(TestFiles.Fixture("apiserver-manifests/checkov/example_ApiServerAnonymousAuth/ApiServer-AnonymousAuth-Missing-FAILED.yaml"), TestFiles.NewDirectory());
        AssertValidSarif(ReportWriters.Sarif(report), report.Count(CheckStatus.Fail) + report.Count(CheckStatus.Warn));
    }

    [Fact]
    public void Sarif_of_unreadable_input_says_so()
    {
        var sarif = ReportWriters.Sarif(CheckReport.Unreadable("portcullis check", "x.yaml", "x.yaml: cannot be read"));
        AssertValidSarif(sarif, 0);
        using var doc = JsonDocument.Parse(sarif);
        var invocation = doc.RootElement.GetProperty("runs")[0].GetProperty("invocations")[0];
        Assert.False(invocation.GetProperty("executionSuccessful").GetBoolean());
    }

    [Fact]
    public void Junit_counts_match_the_findings()
    {
        var (tests, failures) = AssertValidJunit(ReportWriters.Junit(Mixed()));
        Assert.Equal(5, tests);
        Assert.Equal(3, failures); // two FAIL and one WARN
        var (_, failuresWarnAsPass) = AssertValidJunit(ReportWriters.Junit(Mixed(), warnAsPass: true));
        Assert.Equal(2, failuresWarnAsPass);
    }

    [Fact]
    public void Junit_of_unreadable_input_is_an_error_case()
    {
        var xml = ReportWriters.Junit(CheckReport.Unreadable("portcullis check", "x.yaml", "x.yaml: cannot be read"));
        AssertValidJunit(xml);
        Assert.Single(XDocument.Parse(xml).Descendants("error"));
    }

    [Fact]
    public void Json_carries_summary_and_findings()
    {
        using var doc = JsonDocument.Parse(ReportWriters.Json(Mixed()));
        Assert.Equal(1, doc.RootElement.GetProperty("exitCode").GetInt32());
        Assert.Equal(2, doc.RootElement.GetProperty("summary").GetProperty("fail").GetInt32());
        Assert.Equal(5, doc.RootElement.GetProperty("findings").GetArrayLength());
        Assert.Equal("FAIL", doc.RootElement.GetProperty("findings")[0].GetProperty("status").GetString());
    }

    [Fact]
    public void Table_is_grouped_by_layer_with_a_summary_and_colour_only_when_asked()
    {
        var plain = ReportWriters.Table(Mixed(), color: false);
        Assert.DoesNotContain('\u001b', plain);
        Assert.True(plain.IndexOf("== L1 Network", StringComparison.Ordinal) < plain.IndexOf("== L3 Authentication", StringComparison.Ordinal));
        Assert.Contains("1 passed, 2 failed, 1 warnings, 1 info", plain, StringComparison.Ordinal);
        Assert.Contains("fix: --anonymous-auth=false", plain, StringComparison.Ordinal);
        Assert.Contains("\u001b[31;1mFAIL", ReportWriters.Table(Mixed(), color: true), StringComparison.Ordinal);
    }

    [Fact]
    public void Exit_codes_are_0_1_2()
    {
        Assert.Equal(1, Mixed().ExitCode);
        Assert.Equal(0, new CheckReport("t", "s", [new Finding("x", "t", CheckLayer.Tls, CheckStatus.Warn, "e", "r")]).ExitCode);
        Assert.Equal(2, CheckReport.Unreadable("t", "s", "e").ExitCode);
    }
}
