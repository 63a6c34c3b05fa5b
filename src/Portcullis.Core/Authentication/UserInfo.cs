namespace Portcullis.Authentication;

/// <summary>An authenticated identity as kube-apiserver's <c>user.Info</c>: name, uid, groups, extra.</summary>
public sealed record UserInfo(
    string Name,
    string Uid,
    IReadOnlyList<string> Groups,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Extra)
{
    public const string Anonymous = "system:anonymous";
    public const string AuthenticatedGroup = "system:authenticated";
    public const string UnauthenticatedGroup = "system:unauthenticated";
    public const string MastersGroup = "system:masters";

    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> NoExtra =
        new Dictionary<string, IReadOnlyList<string>>();

    public static UserInfo Create(string name, IEnumerable<string>? groups = null, string uid = "",
        IReadOnlyDictionary<string, IReadOnlyList<string>>? extra = null) =>
        new(name, uid, [.. groups ?? []], extra ?? NoExtra);

    /// <summary>The anonymous user: never in <c>system:authenticated</c>.</summary>
    public static UserInfo AnonymousUser { get; } = Create(Anonymous, [UnauthenticatedGroup]);

    public bool IsInGroup(string group)
    {
        foreach (var g in Groups)
        {
            if (string.Equals(g, group, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// kube-apiserver's AuthenticatedGroupAdder: appends <c>system:authenticated</c> unless the user is anonymous
    /// or already carries <c>system:authenticated</c> / <c>system:unauthenticated</c>.
    /// </summary>
    public UserInfo WithAuthenticatedGroup()
    {
        if (Name == Anonymous || IsInGroup(AuthenticatedGroup) || IsInGroup(UnauthenticatedGroup))
        {
            return this;
        }
        return this with { Groups = [.. Groups, AuthenticatedGroup] };
    }
}
