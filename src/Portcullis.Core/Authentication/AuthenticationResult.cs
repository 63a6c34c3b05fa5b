namespace Portcullis.Authentication;

/// <summary>The three outcomes of an authenticator: no credentials of its kind, success, or failure (an error).</summary>
public readonly record struct AuthenticationResult(AuthenticationOutcome Outcome, UserInfo? User, string Authenticator, string? Error)
{
    public static AuthenticationResult NoResult { get; } = new(AuthenticationOutcome.NoResult, null, "", null);

    public static AuthenticationResult Success(UserInfo user, string authenticator) =>
        new(AuthenticationOutcome.Success, user, authenticator, null);

    /// <summary>A credential was presented and rejected. <paramref name="error"/> must never contain the credential.</summary>
    public static AuthenticationResult Fail(string authenticator, string error) =>
        new(AuthenticationOutcome.Failure, null, authenticator, error);
}

public enum AuthenticationOutcome
{
    /// <summary>The authenticator found no credential it handles (kube-apiserver: not ok, no error).</summary>
    NoResult,
    Success,
    /// <summary>A credential was presented and is invalid (kube-apiserver: error).</summary>
    Failure,
}
