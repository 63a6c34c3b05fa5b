using Microsoft.Extensions.Logging;

namespace Portcullis.Diagnostics;

/// <summary>
/// Core's log messages, source-generated with stable event ids (1000–1999; the gateway's own are below 1000).
/// Every text that came from outside passes <see cref="SafeText"/> first; no token, key, password or cookie is ever
/// an argument.
/// </summary>
internal static partial class CoreLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning,
        Message = "OIDC issuer {Issuer}: fetching the signing keys failed ({Reason}); tokens of this issuer are refused until a fetch succeeds, next try in {RetrySeconds}s")]
    public static partial void OidcKeysInitFailed(ILogger logger, string issuer, string reason, double retrySeconds);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "OIDC issuer {Issuer}: signing keys loaded ({Keys} key(s))")]
    public static partial void OidcKeysLoaded(ILogger logger, string issuer, int keys);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning,
        Message = "OIDC issuer {Issuer}: refreshing the signing keys failed ({Reason}); the keys loaded before keep serving")]
    public static partial void OidcKeyRefreshFailed(ILogger logger, string issuer, string reason);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Warning,
        Message = "authentication webhook {Server}: {Reason}; the token is refused (fail closed)")]
    public static partial void TokenWebhookFailed(ILogger logger, string server, string reason);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Error,
        Message = "authenticator {Authenticator} failed unexpectedly ({Error}); the token is refused (fail closed)")]
    public static partial void AuthenticatorFailed(ILogger logger, string authenticator, string error);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning,
        Message = "authenticator {Authenticator} vouched for an identity that cannot be forwarded ({Problem}); the token is refused")]
    public static partial void UnforwardableIdentity(ILogger logger, string authenticator, string problem);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Warning,
        Message = "authorization webhook {Server}: {Reason}; the failure policy answers {Decision}")]
    public static partial void AuthorizationWebhookFailed(ILogger logger, string server, string reason, string decision);
}
