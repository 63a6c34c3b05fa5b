using BenchmarkDotNet.Attributes;
using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Authorization.Rbac;
using Portcullis.Configuration;

namespace Portcullis.Benchmarks;

/// <summary>
/// RBAC decisions over the bootstrap policy (tests/Portcullis.Authorization.Tests/fixtures/rbac) plus N synthetic
/// RoleBindings (user u{i} bound to ClusterRole edit in namespace ns{i % 100}): the cost must not grow with N.
/// </summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class RbacBenchmarks
{
    private RbacAuthorizer _rbac = null!;
    private AuthorizerChain _chain = null!;
    private UserInfo _boundUser = null!;
    private UserInfo _jane = null!;
    private RequestInfo _listPods = null!;
    private RequestInfo _getSecret = null!;
    private RequestInfo _discovery = null!;
    private AuthorizationAttributes _chainAllowed = null!;

    [Params(10, 10_000)]
    public int Bindings { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var errors = new List<ConfigError>();
        var reader = new RbacManifestReader(errors, []);
        reader.ReadPath(FindFixtures());
        for (var i = 0; i < Bindings; i++)
        {
            reader.Bindings.Add(new RbacBinding
            {
                Kind = "RoleBinding",
                Name = "synthetic-" + i,
                Namespace = "ns" + (i % 100),
                RoleRefKind = "ClusterRole",
                RoleRefName = "edit",
                Subjects = [new RbacSubject("User", "u" + i), new RbacSubject("Group", "team-" + (i % 500))],
            });
        }
        var policy = RbacPolicy.Build(reader.Roles, reader.Bindings, errors) ?? throw new InvalidOperationException(string.Join("\n", errors));
        _rbac = new RbacAuthorizer(policy);
        _chain = new AuthorizerChain([new SystemMastersAuthorizer(), _rbac]);
        _boundUser = UserInfo.Create("u5", ["team-5", UserInfo.AuthenticatedGroup]);
        _jane = UserInfo.Create("jane", ["dev", UserInfo.AuthenticatedGroup]);
        _listPods = RequestInfoParser.Parse("GET", "/api/v1/namespaces/ns5/pods", "");
        _getSecret = RequestInfoParser.Parse("GET", "/api/v1/namespaces/ns5/secrets/s1", "");
        _discovery = RequestInfoParser.Parse("GET", "/apis/apps/v1", "");
        _chainAllowed = new AuthorizationAttributes(_boundUser, _listPods);
    }

    private static string FindFixtures()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Portcullis.Authorization.Tests", "fixtures", "rbac");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/Portcullis.Authorization.Tests/fixtures/rbac not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Allowed through a RoleBinding of the aggregated edit role.</summary>
    [Benchmark]
    public AuthorizationResult AllowedByRoleBinding() => _rbac.Authorize(_boundUser, _listPods);

    /// <summary>No binding grants it: every candidate binding of the user and its groups is visited.</summary>
    [Benchmark]
    public AuthorizationResult DeniedNoOpinion() => _rbac.Authorize(_jane, _getSecret);

    /// <summary>Allowed through the system:discovery ClusterRoleBinding to system:authenticated.</summary>
    [Benchmark]
    public AuthorizationResult AllowedByGroupClusterRoleBinding() => _rbac.Authorize(_jane, _discovery);

    /// <summary>The chain (system:masters, RBAC) as the gateway calls it.</summary>
    [Benchmark]
    public AuthorizationResult ChainAllowed()
    {
        var pending = _chain.AuthorizeAsync(_chainAllowed, CancellationToken.None);
        return pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }
}
