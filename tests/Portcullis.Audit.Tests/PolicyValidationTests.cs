using Portcullis.Configuration;

namespace Portcullis.Audit.Tests;

public sealed class PolicyValidationTests
{
    private static IReadOnlyList<ConfigError> Errors(string yaml)
    {
        var ex = Assert.Throws<ConfigurationException>(() => AuditPolicyLoader.Parse(yaml, "policy.yaml"));
        Assert.NotEmpty(ex.Errors);
        return ex.Errors;
    }

    [Fact]
    public void Every_error_is_reported_at_once_with_file_line_and_field()
    {
        var errors = Errors("""
            apiVersion: audit.k8s.io/v1
            kind: Policy
            omitStages: ["RequestRecieved"]
            rules:
            - level: Everything
            - level: Metadata
              nonResourceURLs: ["healthz", "/a*b"]
            - level: Request
              resources:
              - group: ""
                resources: ["pods"]
              nonResourceURLs: ["/x"]
            - level: Metadata
              resources:
              - group: ""
                resourceNames: ["x"]
            - users: ["bob"]
            """);

        Assert.Contains(errors, e => e is { Line: 3, Field: "omitStages[0]" } && e.Message.Contains("RequestRecieved", StringComparison.Ordinal));
        Assert.Contains(errors, e => e is { Line: 5, Field: "rules[0].level" } && e.Message.Contains("Everything", StringComparison.Ordinal));
        Assert.Contains(errors, e => e is { Line: 7, Field: "rules[1].nonResourceURLs[0]" } && e.Message.Contains("must start with", StringComparison.Ordinal));
        Assert.Contains(errors, e => e is { Line: 7, Field: "rules[1].nonResourceURLs[1]" } && e.Message.Contains("last character", StringComparison.Ordinal));
        Assert.Contains(errors, e => e is { Line: 12, Field: "rules[2].nonResourceURLs" } && e.Message.Contains("both", StringComparison.Ordinal));
        Assert.Contains(errors, e => e is { Line: 15, Field: "rules[3].resources[0].resourceNames" });
        Assert.Contains(errors, e => e is { Line: 17, Field: "rules[4].level" } && e.Message.StartsWith("required", StringComparison.Ordinal));
        Assert.All(errors, e => Assert.Equal("policy.yaml", e.File));
        Assert.StartsWith("policy.yaml:5: rules[0].level:", errors.First(e => e.Line == 5).ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n", "apiVersion")]
    [InlineData("kind: Policy\nrules:\n- level: None\n", "apiVersion")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: ConfigMap\nrules:\n- level: None\n", "kind")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\n", "rules")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", "rules")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verbs: get\n", "rules[0].verbs")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  resources:\n  - group: Apps\n", "rules[0].resources[0].group")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: maybe\nrules:\n- level: None\n", "omitManagedFields")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  omitStages: [Later]\n", "rules[0].omitStages[0]")]
    [InlineData("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [\n", "(yaml)")]
    public void Invalid_policies_name_the_field(string yaml, string field)
    {
        var errors = Errors(yaml);

        Assert.Contains(errors, e => e.Field == field && e.Line > 0 || e.Field == field && field is "rules");
    }

    [Fact]
    public void Empty_rules_give_kube_apiservers_message()
    {
        var error = Assert.Single(Errors("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n"));

        Assert.Equal("loaded illegal policy with 0 rules", error.Message);
        Assert.Equal(3, error.Line);
    }

    [Fact]
    public void A_missing_file_is_a_configuration_error_naming_it()
    {
        var ex = Assert.Throws<ConfigurationException>(() => AuditPolicyLoader.Load("/nonexistent/policy.yaml"));

        Assert.Equal("/nonexistent/policy.yaml", Assert.Single(ex.Errors).File);
    }
}
