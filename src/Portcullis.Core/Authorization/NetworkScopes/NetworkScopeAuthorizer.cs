using System.Collections.Frozen;
using System.Net;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Network;

namespace Portcullis.Authorization.NetworkScopes;

/// <summary>One scope: subjects that may act only from <see cref="Allow"/>.</summary>
public sealed class NetworkScope
{
    public NetworkScope(string name, IReadOnlyList<SubjectReference> subjects, CidrSet allow)
    {
        Name = name;
        Subjects = subjects;
        Allow = allow;
        Users = subjects.Where(s => s.Kind is "User").Select(s => s.Name)
            .Concat(subjects.Where(s => s.Kind is "ServiceAccount").Select(s => $"system:serviceaccount:{s.Namespace}:{s.Name}"))
            .ToFrozenSet(StringComparer.Ordinal);
        Groups = subjects.Where(s => s.Kind is "Group").Select(s => s.Name).ToFrozenSet(StringComparer.Ordinal);
        Description = $"{name} ({string.Join(", ", subjects.Select(s => s.Kind == "ServiceAccount" ? $"ServiceAccount \"{s.Namespace}/{s.Name}\"" : $"{s.Kind} \"{s.Name}\""))}) allows only {string.Join(", ", allow.Items)}";
    }

    /// <summary>networkScopes[i].</summary>
    public string Name { get; }
    public IReadOnlyList<SubjectReference> Subjects { get; }
    public CidrSet Allow { get; }
    public string Description { get; }
    private FrozenSet<string> Users { get; }
    private FrozenSet<string> Groups { get; }

    public bool AppliesTo(UserInfo user)
    {
        if (Users.Contains(user.Name))
        {
            return true;
        }
        if (Groups.Count > 0)
        {
            var groups = user.Groups;
            for (var i = 0; i < groups.Count; i++)
            {
                if (Groups.Contains(groups[i]))
                {
                    return true;
                }
            }
        }
        return false;
    }
}

/// <summary>
/// Network-scoped privileges: a user that is a subject of a scope must come from that scope's CIDRs, or is denied with a
/// reason naming the scope. Every scope that applies must be satisfied; an unknown source address fails closed.
/// Users no scope names get NoOpinion (allocation-free).
/// </summary>
public sealed class NetworkScopeAuthorizer : IAuthorizer
{
    public const string AuthorizerName = "NetworkScope";

    private readonly NetworkScope[] _scopes;

    public NetworkScopeAuthorizer(IEnumerable<NetworkScope> scopes) => _scopes = [.. scopes];

    public IReadOnlyList<NetworkScope> Scopes => _scopes;

    public string Name => AuthorizerName;

    /// <summary>Builds the scopes of <c>authorization.networkScopes</c> (validated by the configuration loader).</summary>
    public static NetworkScopeAuthorizer FromConfiguration(IReadOnlyList<NetworkScopeConfiguration> scopes) =>
        new(scopes.Select((s, i) => new NetworkScope($"networkScopes[{i}]", s.Subjects, CidrSet.Parse(s.Allow))));

    /// <summary>The scope that refuses this user from this address, or null.</summary>
    public NetworkScope? Violated(UserInfo user, IPAddress? source)
    {
        for (var i = 0; i < _scopes.Length; i++)
        {
            var scope = _scopes[i];
            if (scope.AppliesTo(user) && (source is null || !scope.Allow.Contains(source)))
            {
                return scope;
            }
        }
        return null;
    }

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        var scope = Violated(attributes.User, attributes.SourceAddress);
        if (scope is null)
        {
            return new(AuthorizationResult.NoOpinion(AuthorizerName));
        }
        var from = attributes.SourceAddress is null ? "an unknown address" : Cidr.Normalize(attributes.SourceAddress).ToString();
        return new(new AuthorizationResult(AuthorizationDecision.Deny,
            $"network scope {scope.Description}; the request came from {from}", null, AuthorizerName,
            AuthorizationResult.NetworkScopeAnnotation, scope.Name));
    }
}
