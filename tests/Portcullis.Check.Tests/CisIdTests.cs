using System.Reflection;
using Portcullis.Check.Readers;
using Portcullis.Check.Rules;

namespace Portcullis.Check.Tests;

/// <summary>The CIS ids and titles the rules carry are the ones kube-bench's cis-1.12 config has.</summary>
public sealed class CisIdTests
{
    private static Dictionary<string, string> KubeBenchChecks()
    {
        var checks = new Dictionary<string, string>();
        foreach (var file in new[] { "master.yaml", "controlplane.yaml" })
        {
            var text = File.ReadAllText(TestFiles.Fixture("apiserver-manifests/kube-bench/cis-1.12/" + file));
            var documents = YamlDocuments.TryLoad(text, file, out var error);
            Assert.True(documents is not null, error);
            foreach (var group in documents![0].Seq("groups"))
            {
                foreach (var check in group.Seq("checks"))
                {
                    checks[check.Str("id")!] = check.Str("text")!;
                }
            }
        }
        return checks;
    }

    [Fact]
    public void Every_CIS_rule_id_and_title_matches_kube_bench_cis_1_12()
    {
        var checks = KubeBenchChecks();
        var rules = typeof(RuleCatalog).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (RuleInfo)f.GetValue(null)!)
            .Where(r => !r.Id.StartsWith("PC-", StringComparison.Ordinal) && r.Id.StartsWith("1.", StringComparison.Ordinal) || r.Id.StartsWith("3.", StringComparison.Ordinal))
            .ToList();
        Assert.True(rules.Count >= 30, $"only {rules.Count} CIS rules");
        foreach (var rule in rules)
        {
            Assert.True(checks.TryGetValue(rule.Id, out var text), $"{rule.Id} is not in kube-bench cis-1.12");
            var title = text.Replace(" (Automated)", "", StringComparison.Ordinal).Replace(" (Manual)", "", StringComparison.Ordinal);
            // 1.2.3's kube-bench text names the plugin as a flag ("--DenyServiceExternalIPs"); ours says what it is.
            if (rule.Id != "1.2.3")
            {
                Assert.Equal(title, rule.Title);
            }
        }
    }

    [Fact]
    public void Every_API_server_check_of_cis_1_12_has_a_rule()
    {
        var ids = typeof(RuleCatalog).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => ((RuleInfo)f.GetValue(null)!).Id).ToHashSet();
        var missing = KubeBenchChecks().Keys.Where(id => id.StartsWith("1.2.", StringComparison.Ordinal) || id is "3.2.1" or "3.2.2").Where(id => !ids.Contains(id)).ToList();
        Assert.True(missing.Count == 0, "no rule for " + string.Join(", ", missing));
    }
}
