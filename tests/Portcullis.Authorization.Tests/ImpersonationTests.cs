using Portcullis.Authentication;
using Portcullis.Authorization.Impersonation;
using Portcullis.Http;

namespace Portcullis.Authorization.Tests;

public class ImpersonationTests(RbacFixture fixture) : IClassFixture<RbacFixture>
{
    private static KeyValuePair<string, string> H(string name, string value) => new(name, value);

    [Fact]
    public void No_headers_no_plan()
    {
        var r = ImpersonationHeaders.Parse([H("Authorization", "Bearer x"), H("Accept", "application/json")]);
        Assert.False(r.IsImpersonating);
        Assert.Null(r.BadRequestMessage);
    }

    [Fact]
    public void Groups_without_user_is_400_with_kube_apiservers_message()
    {
        var r = ImpersonationHeaders.Parse([H("Impersonate-Group", "g1"), H("impersonate-group", "g2")]);
        Assert.Equal("requested [{Group  g1    } {Group  g2    }] without impersonating a user", r.BadRequestMessage);
        Assert.Equal("""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"requested [{Group  g1    } {Group  g2    }] without impersonating a user","reason":"BadRequest","code":400}""",
            Status.ToText(Status.Failure(r.BadRequestMessage!, "BadRequest", 400)));
    }

    [Fact]
    public void Uid_and_extra_without_user_is_400()
    {
        var r = ImpersonationHeaders.Parse([H("Impersonate-Extra-Scopes", "view"), H("Impersonate-Uid", "42")]);
        Assert.Equal("requested [{UserExtra  view  authentication.k8s.io/v1  scopes} {UID  42  authentication.k8s.io/v1  }] without impersonating a user", r.BadRequestMessage);
    }

    [Theory]
    [InlineData("Impersonate-User", "eve\r\nImpersonate-Group: system:masters", "invalid impersonation header Impersonate-User: its value contains a control character (U+000D)")]
    [InlineData("Impersonate-Group", "dev\tops", "invalid impersonation header Impersonate-Group: its value contains a control character (U+0009)")]
    [InlineData("Impersonate-Uid", "42\u0085", "invalid impersonation header Impersonate-Uid: its value contains a control character (U+0085)")]
    [InlineData("Impersonate-Group", "admins ", "invalid impersonation header Impersonate-Group: its value ends with whitespace (U+0020)")]
    [InlineData("Impersonate-Extra-a%0D%0AImpersonate-Group", "x", "invalid impersonation header Impersonate-Extra-a%0D%0AImpersonate-Group: its decoded extra key contains a control character (U+000D)")]
    [InlineData("Impersonate-Extra-scopes%20", "x", "invalid impersonation header Impersonate-Extra-scopes%20: its decoded extra key ends with whitespace (U+0020)")]
    public void Identity_values_with_control_characters_or_edge_whitespace_are_400(string name, string value, string message)
    {
        var r = ImpersonationHeaders.Parse([H("Impersonate-User", "jane"), H(name, value)]);
        Assert.False(r.IsImpersonating);
        Assert.Equal(message, r.BadRequestMessage);
    }

    [Fact]
    public void Identity_value_with_a_lone_surrogate_is_400()
    {
        var r = ImpersonationHeaders.Parse([H("Impersonate-User", "jane"), H("Impersonate-Extra-Scopes", "view" + (char)0xD800)]);
        Assert.Equal("invalid impersonation header Impersonate-Extra-Scopes: its value contains a lone surrogate (U+D800)", r.BadRequestMessage);
    }

    [Fact]
    public void User_groups_extra_uid_make_one_check_each()
    {
        var r = ImpersonationHeaders.Parse([
            H("Impersonate-User", "jane.doe@example.com"), H("Impersonate-Group", "developers"), H("Impersonate-Group", "admins"),
            H("Impersonate-Extra-Scopes", "view"), H("Impersonate-Extra-Scopes", "development"), H("Impersonate-Extra-acme.com%2Fproject", "p1"),
            H("Impersonate-Uid", "06f6ce97-e2c5-4ab8-7ba5-7654dd08d52b")]);
        var plan = r.Plan!;
        Assert.Equal(["User", "Group", "Group", "UserExtra", "UserExtra", "UserExtra", "UID"], plan.Checks.Select(c => c.Kind));
        var extra = plan.Checks[5].Request;
        Assert.Equal(("impersonate", "authentication.k8s.io", "userextras", "acme.com/project", "p1"), (extra.Verb, extra.ApiGroup, extra.Resource, extra.Subresource, extra.Name));
        var user = plan.ImpersonatedUser;
        Assert.Equal("jane.doe@example.com", user.Name);
        Assert.Equal("06f6ce97-e2c5-4ab8-7ba5-7654dd08d52b", user.Uid);
        Assert.Equal(["developers", "admins", "system:authenticated"], user.Groups);
        Assert.Equal(["view", "development"], user.Extra["scopes"]);
        Assert.Equal(["p1"], user.Extra["acme.com/project"]);
    }

    [Fact]
    public void Service_account_gets_default_groups_and_a_namespaced_check()
    {
        var plan = ImpersonationHeaders.Parse([H("Impersonate-User", "system:serviceaccount:team-a:ci")]).Plan!;
        var check = Assert.Single(plan.Checks);
        Assert.Equal(("ServiceAccount", "serviceaccounts", "team-a", "ci"), (check.Kind, check.Request.Resource, check.Request.Namespace, check.Request.Name));
        Assert.Equal(["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"], plan.ImpersonatedUser.Groups);
        var withGroup = ImpersonationHeaders.Parse([H("Impersonate-User", "system:serviceaccount:team-a:ci"), H("Impersonate-Group", "g")]).Plan!;
        Assert.Equal(["g", "system:authenticated"], withGroup.ImpersonatedUser.Groups);
        var invalid = ImpersonationHeaders.Parse([H("Impersonate-User", "system:serviceaccount:Bad_NS:ci")]).Plan!;
        Assert.Equal("User", invalid.Checks[0].Kind);
    }

    [Fact]
    public void Anonymous_gets_unauthenticated()
    {
        var plan = ImpersonationHeaders.Parse([H("Impersonate-User", "system:anonymous")]).Plan!;
        Assert.Equal(["system:unauthenticated"], plan.ImpersonatedUser.Groups);
    }

    [Theory]
    [InlineData("jane.doe@example.com", "developers", true, "")]
    [InlineData("bob", "", false, "users \"bob\" is forbidden: User \"imp\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope")]
    [InlineData("jane.doe@example.com", "ops", false, "groups \"ops\" is forbidden: User \"imp\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope")]
    public async Task Checks_go_through_the_chain(string user, string group, bool allowed, string message)
    {
        var headers = new List<KeyValuePair<string, string>> { H("Impersonate-User", user) };
        if (group.Length > 0)
        {
            headers.Add(H("Impersonate-Group", group));
        }
        var plan = ImpersonationHeaders.Parse(headers).Plan!;
        var requestor = UserInfo.Create("imp", [UserInfo.AuthenticatedGroup]);
        var result = await ImpersonationHeaders.AuthorizeAsync(fixture.Chain, requestor, plan, null, null, null, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(allowed, result.Allowed);
        if (!allowed)
        {
            Assert.Equal(message, Forbidden.Message(requestor.Name, result.FailedCheck!.Request, result.Result.Reason));
            Assert.Contains("\"code\":403", Status.ToText(result.ForbiddenBody(requestor.Name)), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Extra_and_uid_checks_use_the_docs_impersonator_role()
    {
        var plan = ImpersonationHeaders.Parse([
            H("Impersonate-User", "jane.doe@example.com"), H("Impersonate-Extra-scopes", "view"),
            H("Impersonate-Uid", "06f6ce97-e2c5-4ab8-7ba5-7654dd08d52b")]).Plan!;
        var requestor = UserInfo.Create("imp", [UserInfo.AuthenticatedGroup]);
        var ok = await ImpersonationHeaders.AuthorizeAsync(fixture.Chain, requestor, plan, null, null, null, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(ok.Allowed);
        var bad = ImpersonationHeaders.Parse([H("Impersonate-User", "jane.doe@example.com"), H("Impersonate-Extra-scopes", "admin")]).Plan!;
        var refused = await ImpersonationHeaders.AuthorizeAsync(fixture.Chain, requestor, bad, null, null, null, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(refused.Allowed);
        Assert.Equal("userextras.authentication.k8s.io \"admin\" is forbidden: User \"imp\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope",
            Forbidden.Message("imp", refused.FailedCheck!.Request, refused.Result.Reason));
    }

    [Fact]
    public async Task Edit_role_may_impersonate_service_accounts_in_its_namespace()
    {
        var plan = ImpersonationHeaders.Parse([H("Impersonate-User", "system:serviceaccount:team-a:builder")]).Plan!;
        var dev = UserInfo.Create("dev1", ["team-a-devs", UserInfo.AuthenticatedGroup]);
        var inNs = await ImpersonationHeaders.AuthorizeAsync(fixture.Chain, dev, plan, null, null, null, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(inNs.Allowed);
        var other = ImpersonationHeaders.Parse([H("Impersonate-User", "system:serviceaccount:kube-system:builder")]).Plan!;
        var outside = await ImpersonationHeaders.AuthorizeAsync(fixture.Chain, dev, other, null, null, null, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(outside.Allowed);
    }
}
