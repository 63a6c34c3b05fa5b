using System.Net;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Authentication;
using Portcullis.Authorization.DenyLists;
using Portcullis.Authorization.NetworkScopes;
using Portcullis.Configuration;

namespace Portcullis.Authorization.Tests;

public class DenyListTests
{
    private const string Sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    private const string Text = $"""
        apiVersion: portcullis.dev/v1alpha1
        kind: DenyList
        entries:
        - user: jane
          reason: "laptop stolen 2026-11-20"
          expires: 2026-12-31T00:00:00Z
        - group: contractors
          reason: contract ended
        - serviceAccount: ci/deployer
          reason: leaked token
        - tokenSHA256: {Sha}
          reason: token in a public gist
        - certificateSerial: "00:4F:2a:01"
          reason: certificate on the stolen laptop
        - sourceCIDR: 203.0.113.0/24
          reason: hostile network
        """;

    private static DenyList Parse(string text, List<ConfigError>? errors = null)
    {
        errors ??= [];
        var list = DenyList.Parse(text, "deny.yaml", errors);
        return list ?? throw new InvalidOperationException(string.Join("\n", errors));
    }

    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Every_selector_matches()
    {
        var list = Parse(Text);
        Assert.Equal("laptop stolen 2026-11-20", list.Matches(UserInfo.Create("jane"), null, null, null, Now)?.Reason);
        Assert.Equal("contract ended", list.Matches(UserInfo.Create("bob", ["x", "contractors"]), null, null, null, Now)?.Reason);
        Assert.Equal("leaked token", list.Matches(UserInfo.Create("system:serviceaccount:ci:deployer"), null, null, null, Now)?.Reason);
        Assert.Equal("token in a public gist", list.Matches(UserInfo.Create("bob"), Sha.ToUpperInvariant(), null, null, Now)?.Reason);
        Assert.Equal("certificate on the stolen laptop", list.Matches(UserInfo.Create("bob"), null, "4F2A01", null, Now)?.Reason);
        Assert.Equal("certificate on the stolen laptop", list.Matches(UserInfo.Create("bob"), null, "004f2a01", null, Now)?.Reason);
        Assert.Equal("hostile network", list.Matches(UserInfo.Create("bob"), null, null, IPAddress.Parse("203.0.113.9"), Now)?.Reason);
        Assert.Equal("hostile network", list.Matches(UserInfo.Create("bob"), null, null, IPAddress.Parse("::ffff:203.0.113.9"), Now)?.Reason);
        Assert.Null(list.Matches(UserInfo.Create("bob", ["dev"]), "00", "4F2A02", IPAddress.Parse("198.51.100.1"), Now));
        Assert.Null(list.Matches(UserInfo.Create("system:serviceaccount:other:deployer"), null, null, null, Now));
    }

    [Fact]
    public void Expired_entries_no_longer_match()
    {
        var list = Parse(Text);
        Assert.NotNull(list.Matches(UserInfo.Create("jane"), null, null, null, new DateTimeOffset(2026, 12, 30, 23, 59, 59, TimeSpan.Zero)));
        Assert.Null(list.Matches(UserInfo.Create("jane"), null, null, null, new DateTimeOffset(2026, 12, 31, 0, 0, 0, TimeSpan.Zero)));
    }

    [Fact]
    public async Task Deny_list_denies_before_system_masters_with_annotation()
    {
        var time = new FakeTimeProvider(Now);
        var deny = new DenyListAuthorizer(Parse(Text), time);
        using var chain = new AuthorizerChain([deny, new SystemMastersAuthorizer(), new AlwaysAllowAuthorizer()]);
        var attributes = new AuthorizationAttributes(UserInfo.Create("jane", [UserInfo.MastersGroup]), RequestInfoParser.Parse("GET", "/api/v1/pods", ""));
        var r = await chain.AuthorizeAsync(attributes, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(AuthorizationDecision.Deny, r.Decision);
        Assert.Equal("DenyList", r.Authorizer);
        Assert.Equal("deny list: laptop stolen 2026-11-20", r.Reason);
        Assert.Equal("entries[0] user=jane", r.AuditAnnotations().Single(a => a.Key == "portcullis.dev/deny-list-entry").Value);
        Assert.Equal("pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" at the cluster scope: deny list: laptop stolen 2026-11-20",
            Forbidden.Message("jane", attributes.Request, r.Reason));

        time.SetUtcNow(new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero));
        r = await chain.AuthorizeAsync(attributes, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(r.IsAllowed);
    }

    [Fact]
    public void Update_swaps_the_list_and_raises_changed()
    {
        var deny = new DenyListAuthorizer(DenyList.Empty, new FakeTimeProvider(Now));
        var attributes = new AuthorizationAttributes(UserInfo.Create("jane"), RequestInfoParser.Parse("GET", "/api/v1/pods", ""));
        Assert.Null(deny.Match(attributes));
        DenyList? seen = null;
        deny.Changed += (_, list) => seen = list;
        var next = Parse(Text);
        deny.Update(next);
        Assert.Same(next, seen);
        Assert.True(next.Version > DenyList.Empty.Version);
        Assert.NotNull(deny.Match(attributes));
    }

    [Fact]
    public void Token_hash_is_shortened_in_descriptions()
    {
        var entry = Parse(Text).Entries.Single(e => e.Selector == "tokenSHA256");
        Assert.Equal("entries[3] tokenSHA256=9f86d081884c…", entry.Describe());
    }

    [Fact]
    public void Matching_does_not_allocate()
    {
        var list = Parse(Text);
        var user = UserInfo.Create("bob", ["dev", "ops"]);
        var ip = IPAddress.Parse("198.51.100.1");
        _ = list.Matches(user, Sha, "04f2a02", ip, Now);
        var otherSha = Sha[..63] + "0";
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            _ = list.Matches(user, otherSha, "04f2a02", ip, Now);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            _ = list.Matches(user, null, "04f2a02", ip, Now);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Load_errors_name_file_line_and_field()
    {
        var errors = new List<ConfigError>();
        var list = DenyList.Parse("""
            apiVersion: portcullis.dev/v1alpha1
            kind: DenyList
            entries:
            - user: a
              group: b
              reason: two selectors
            - reason: none
            - tokenSHA256: abc
              reason: short
            - sourceCIDR: 10.0.0.0/33
              reason: bad
            - serviceAccount: justname
              reason: bad
            - user: c
            - user: d
              reason: x
              expires: tomorrow
              colour: red
            """, "deny.yaml", errors);
        Assert.Null(list);
        Assert.Contains(errors, e => e.Line == 4 && e.Field == "entries[0]" && e.Message.Contains("user and group", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 7 && e.Field == "entries[1]");
        Assert.Contains(errors, e => e.Line == 8 && e.Field == "entries[2].tokenSHA256");
        Assert.Contains(errors, e => e.Line == 10 && e.Field == "entries[3].sourceCIDR");
        Assert.Contains(errors, e => e.Line == 12 && e.Field == "entries[4].serviceAccount");
        Assert.Contains(errors, e => e.Line == 14 && e.Field == "entries[5].reason");
        Assert.Contains(errors, e => e.Line == 17 && e.Field == "entries[6].expires");
        Assert.Contains(errors, e => e.Line == 18 && e.Message.Contains("unknown field \"colour\"", StringComparison.Ordinal));
        Assert.All(errors, e => Assert.Equal("deny.yaml", e.File));
    }

    [Fact]
    public void Wrong_kind_is_an_error()
    {
        var errors = new List<ConfigError>();
        Assert.Null(DenyList.Parse("apiVersion: portcullis.dev/v1alpha1\nkind: RevocationList\nentries: []\n", "deny.yaml", errors));
        Assert.Contains(errors, e => e.Field == "kind" && e.Line == 2);
    }

    [Fact]
    public void Chain_loads_the_deny_list_file_from_configuration()
    {
        var dir = Directory.CreateTempSubdirectory("portcullis-deny-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "deny.yaml"), Text);
            var config = BootstrapDecisionTable.Configuration();
            config.Authorization.DenyListFile = Path.Combine(dir.FullName, "deny.yaml");
            using var chain = AuthorizerChain.Create(config);
            Assert.Equal("DenyList", chain.Authorizers[0].Name);
            Assert.Equal(6, chain.DenyList!.List.Entries.Count);
        }
        finally
        {
            dir.Delete(true);
        }
    }
}

public class NetworkScopeTests
{
    private static NetworkScopeAuthorizer Scopes() => NetworkScopeAuthorizer.FromConfiguration([
        new NetworkScopeConfiguration
        {
            Subjects = [new SubjectReference { Kind = "Group", Name = "system:masters" }, new SubjectReference { Kind = "User", Name = "ops" }],
            Allow = ["192.168.1.0/24", "2001:db8::/32"],
        },
        new NetworkScopeConfiguration
        {
            Subjects = [new SubjectReference { Kind = "ServiceAccount", Namespace = "ci", Name = "deployer" }],
            Allow = ["10.0.0.0/8"],
        },
    ]);

    private static AuthorizationAttributes A(UserInfo user, string? ip) =>
        new(user, RequestInfoParser.Parse("GET", "/api/v1/secrets", ""), ip is null ? null : IPAddress.Parse(ip));

    [Theory]
    [InlineData("root", "system:masters", "192.168.1.7", true)]
    [InlineData("root", "system:masters", "2001:db8::1", true)]
    [InlineData("root", "system:masters", "::ffff:192.168.1.7", true)]
    [InlineData("root", "system:masters", "203.0.113.5", false)]
    [InlineData("root", "system:masters", null, false)]
    [InlineData("ops", "", "203.0.113.5", false)]
    [InlineData("system:serviceaccount:ci:deployer", "", "10.1.2.3", true)]
    [InlineData("system:serviceaccount:ci:deployer", "", "192.168.1.7", false)]
    [InlineData("jane", "dev", "203.0.113.5", true)]
    [InlineData("jane", "dev", null, true)]
    public async Task Scoped_subjects_act_only_from_their_networks(string user, string groups, string? ip, bool passes)
    {
        var r = await Scopes().AuthorizeAsync(A(UserInfo.Create(user, groups.Length == 0 ? [] : groups.Split(',')), ip), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(passes ? AuthorizationDecision.NoOpinion : AuthorizationDecision.Deny, r.Decision);
    }

    [Fact]
    public void Service_account_subject_needs_a_namespace()
    {
        var config = BootstrapDecisionTable.Configuration();
        config.Authorization.NetworkScopes = [new NetworkScopeConfiguration { Subjects = [new SubjectReference { Kind = "ServiceAccount", Name = "ci" }], Allow = ["10.0.0.0/8"] }];
        var (chain, errors) = AuthorizerChain.TryCreate(config);
        Assert.Null(chain);
        Assert.Contains(errors, e => e.Field == "authorization.networkScopes[0].subjects[0].namespace");
    }

    [Fact]
    public async Task Stolen_masters_credential_is_useless_from_a_cafe()
    {
        using var chain = new AuthorizerChain([Scopes(), new SystemMastersAuthorizer(), new AlwaysDenyAuthorizer()]);
        var r = await chain.AuthorizeAsync(A(UserInfo.Create("root", [UserInfo.MastersGroup]), "203.0.113.5"), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(AuthorizationDecision.Deny, r.Decision);
        Assert.Equal("NetworkScope", r.Authorizer);
        Assert.Equal("network scope networkScopes[0] (Group \"system:masters\", User \"ops\") allows only 192.168.1.0/24, 2001:db8::/32; the request came from 203.0.113.5", r.Reason);
        Assert.Equal("networkScopes[0]", r.AnnotationValue);
        var fromVpn = await chain.AuthorizeAsync(A(UserInfo.Create("root", [UserInfo.MastersGroup]), "192.168.1.7"), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(fromVpn.IsAllowed);
        Assert.Equal("system:masters", fromVpn.Authorizer);
    }
}
