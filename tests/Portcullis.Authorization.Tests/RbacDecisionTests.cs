using Portcullis.Authorization.Explain;
using Portcullis.Authorization.Rbac;

namespace Portcullis.Authorization.Tests;

public sealed class RbacFixture : IDisposable
{
    public RbacFixture()
    {
        Chain = AuthorizerChain.Create(BootstrapDecisionTable.Configuration());
        var loaded = RbacPolicy.Load([Path.Combine(BootstrapDecisionTable.FixturesDirectory, "rbac"), Path.Combine(BootstrapDecisionTable.FixturesDirectory, "rbac-local")]);
        Assert.Empty(loaded.Errors);
        Policy = loaded.Policy!;
        Notes = loaded.Notes;
    }

    public AuthorizerChain Chain { get; }
    public RbacPolicy Policy { get; }
    public IReadOnlyList<string> Notes { get; }

    public void Dispose() => Chain.Dispose();
}

public class RbacDecisionTests(RbacFixture fixture) : IClassFixture<RbacFixture>
{
    public static TheoryData<int> Rows()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < BootstrapDecisionTable.All.Count; i++)
        {
            data.Add(i);
        }
        return data;
    }

    [Fact]
    public void The_table_has_at_least_60_decisions_both_ways()
    {
        Assert.True(BootstrapDecisionTable.All.Count >= 60);
        Assert.True(BootstrapDecisionTable.All.Count(d => d.Allowed) >= 25);
        Assert.True(BootstrapDecisionTable.All.Count(d => !d.Allowed) >= 25);
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task Bootstrap_policy_decides_through_explain(int row)
    {
        var d = BootstrapDecisionTable.All[row];
        var explanation = await AuthorizationExplainer.ExplainAsync(fixture.Chain, new AuthorizationAttributes(d.UserInfo, d.Request), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(d.Allowed == explanation.Allowed, $"{d}: {explanation.ToText()}");
        if (d.Reason.Length > 0)
        {
            if (d.Allowed)
            {
                Assert.Equal(d.Reason, explanation.Result.Reason);
            }
            else
            {
                Assert.Contains(d.Reason, explanation.Result.Reason, StringComparison.Ordinal);
            }
        }
        // the index and kube-apiserver's linear scan agree on every row
        Assert.Equal(fixture.Policy.EvaluateLinear(d.UserInfo, d.Request).Allowed, fixture.Policy.Evaluate(d.UserInfo, d.Request).Allowed);
    }

    [Fact]
    public void Bootstrap_admin_edit_view_are_aggregated()
    {
        var view = fixture.Policy.ClusterRole("view")!;
        var edit = fixture.Policy.ClusterRole("edit")!;
        var admin = fixture.Policy.ClusterRole("admin")!;
        Assert.NotEmpty(view.Rules);
        // edit aggregates view (through aggregate-to-edit on view) and admin aggregates edit: chains reach a fixpoint
        Assert.All(view.Rules, r => Assert.Contains(r, edit.Rules));
        Assert.All(edit.Rules, r => Assert.Contains(r, admin.Rules));
        Assert.True(admin.Rules.Count > edit.Rules.Count && edit.Rules.Count > view.Rules.Count);
        Assert.Equal(admin.Rules.Count, admin.Rules.Distinct().Count());
    }

    [Fact]
    public void Other_kinds_are_skipped_with_a_note() =>
        Assert.Contains(fixture.Notes, n => n.Contains("ignored kind ConfigMap", StringComparison.Ordinal) && n.Contains("team-a.yaml:", StringComparison.Ordinal));

    [Fact]
    public async Task Explain_names_binding_role_and_rule()
    {
        var d = BootstrapDecisionTable.All.First(x => x.User == "lou" && x.Allowed);
        var explanation = await AuthorizationExplainer.ExplainAsync(fixture.Chain, new AuthorizationAttributes(d.UserInfo, d.Request), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        var text = explanation.ToText();
        Assert.Contains("decided by: RBAC", text, StringComparison.Ordinal);
        Assert.Contains("RoleBinding \"log-readers\" in team-a", text, StringComparison.Ordinal);
        Assert.Contains("Role \"log-reader\"", text, StringComparison.Ordinal);
        Assert.Contains("resources=[pods/log]", text, StringComparison.Ordinal);
        Assert.Contains("\"binding\": \"RoleBinding/team-a/log-readers\"", explanation.ToJson(), StringComparison.Ordinal);
    }

    [Fact]
    public void WhoCan_lists_subjects_with_bindings()
    {
        var who = fixture.Policy.WhoCan(RequestInfoParser.Resource("get", "", "secrets", ns: "team-a", name: "s1"));
        Assert.Contains(who, m => m.Subject.Name == "system:masters" && m.Binding.Name == "cluster-admin");
        Assert.Contains(who, m => m.Subject.Name == "team-a-devs" && m.Binding.Name == "editors");
        Assert.Contains(who, m => m.Subject.Name == "ada");
        Assert.DoesNotContain(who, m => m.Subject.Name == "vera");
        Assert.DoesNotContain(who, m => m.Subject.Name == "nobody");
    }
}
