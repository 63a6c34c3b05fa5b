using Microsoft.Extensions.Logging;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>Every log line the gateway writes, with stable event ids. No token, key or cookie is ever a parameter.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Portcullis listening on {Address} (HTTPS, HTTP/1.1 and HTTP/2)")]
    public static partial void Listening(ILogger logger, string address);

    [LoggerMessage(2, LogLevel.Information, "Admin endpoints on http://{Address} (/healthz /livez /readyz /metrics)")]
    public static partial void AdminListening(ILogger logger, string address);

    [LoggerMessage(3, LogLevel.Information, "Configuration reloaded from {Path}")]
    public static partial void Reloaded(ILogger logger, string path);

    [LoggerMessage(4, LogLevel.Error, "Configuration reload rejected, still serving the previous configuration: {Error}")]
    public static partial void ReloadFailed(ILogger logger, string error);

    [LoggerMessage(5, LogLevel.Information, "Connection from {Remote} refused by network policy")]
    public static partial void ConnectionRefused(ILogger logger, string remote);

    [LoggerMessage(6, LogLevel.Information, "Client certificate refused: {Subject} ({Reason})")]
    public static partial void ClientCertificateRefused(ILogger logger, string subject, string reason);

    [LoggerMessage(7, LogLevel.Warning, "Upstream {Upstream} unreachable: {Reason}")]
    public static partial void UpstreamUnreachable(ILogger logger, string upstream, string reason);

    [LoggerMessage(8, LogLevel.Information, "Authentication failed from {Remote}: {Reason}")]
    public static partial void AuthenticationFailed(ILogger logger, string remote, string reason);

    [LoggerMessage(9, LogLevel.Information, "Shutting down: draining in-flight requests for up to {Seconds}s")]
    public static partial void Draining(ILogger logger, double seconds);

    [LoggerMessage(10, LogLevel.Warning, "Forwarding error {Error} for {Method} {Path}: {Reason}")]
    public static partial void ForwardingError(ILogger logger, string error, string method, string path, string reason);

    /// <summary>The client went away mid-request (closed or reset its connection or stream): routine, not a gateway or
    /// upstream fault, so Information rather than event 10's Warning.</summary>
    [LoggerMessage(17, LogLevel.Information, "Client went away ({Error}) during {Method} {Path}: {Reason}")]
    public static partial void ForwardingClientGone(ILogger logger, string error, string method, string path, string reason);

    [LoggerMessage(12, LogLevel.Error, "Audit backend {Plugin} failed to store {Events} event(s): {Message}")]
    public static partial void AuditBackendFailed(ILogger logger, string plugin, int events, string message);

    [LoggerMessage(11, LogLevel.Information, "Closed {Count} open stream(s) at shutdown")]
    public static partial void StreamsClosed(ILogger logger, int count);

    [LoggerMessage(30, LogLevel.Error, "The {Field} of the authenticated user cannot be written upstream unchanged; the request was refused")]
    public static partial void IdentityNotForwardable(ILogger logger, string field);

    [LoggerMessage(31, LogLevel.Warning, "Reloaded {Path}: {Field} changed, which takes effect only at the next restart; the gateway keeps serving with the value it started with")]
    public static partial void RestartRequired(ILogger logger, string path, string field);

    [LoggerMessage(13, LogLevel.Warning, "Banned {Address} until {ExpiresAt:u} ({Duration}): {Reason}, {Failures} failure(s), repeat level {Level}{Comment}")]
    public static partial void Banned(ILogger logger, string address, DateTimeOffset expiresAt, string duration, string reason, int failures, int level, string comment);

    [LoggerMessage(14, LogLevel.Information, "Lifted the ban of {Address} ({UnbanReason}; it was a {Reason} ban after {Failures} failure(s)){Comment}")]
    public static partial void Unbanned(ILogger logger, string address, string unbanReason, string reason, int failures, string comment);

    [LoggerMessage(15, LogLevel.Error, "Auto-ban: {Message}")]
    public static partial void BanStateFailed(ILogger logger, string message);

    [LoggerMessage(16, LogLevel.Debug, "Connection from {Remote} refused: the address is banned")]
    public static partial void ConnectionBanned(ILogger logger, string remote);

    [LoggerMessage(40, LogLevel.Information, "Connection from {Remote} closed: {Reason} (network.proxyProtocol)")]
    public static partial void ProxyProtocolRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(41, LogLevel.Information, "Request from {Remote} through trusted proxy {Peer} refused: {Reason}")]
    public static partial void ForwardedRefused(ILogger logger, string remote, string peer, string reason);

    [LoggerMessage(42, LogLevel.Information, "Client certificate refused: {Subject} is valid for {Lifetime}, longer than tls.clientCertificates.maxLifetime {Limit}")]
    public static partial void ClientCertificateLifetimeRefused(ILogger logger, string subject, string lifetime, string limit);

    [LoggerMessage(43, LogLevel.Warning, "Client certificate accepted with a warning: {Subject} is valid for {Lifetime}, longer than tls.clientCertificates.maxLifetime {Limit} (action: warn)")]
    public static partial void ClientCertificateLifetimeWarning(ILogger logger, string subject, string lifetime, string limit);

    [LoggerMessage(60, LogLevel.Warning, "Client certificate refused: {Subject} is revoked by {Entry} ({Reason})")]
    public static partial void RevokedCertificateRefused(ILogger logger, string subject, string entry, string reason);

    [LoggerMessage(61, LogLevel.Warning, "Closed {Count} open connection(s) of newly revoked client certificates (first: {Subject}, revoked by {Entry})")]
    public static partial void RevokedConnectionsClosed(ILogger logger, int count, string subject, string entry);

    [LoggerMessage(44, LogLevel.Information, "Connection from {Remote} refused: {Count} connection(s) open, {Limit} allowed by {Field}")]
    public static partial void ConnectionOverLimit(ILogger logger, string remote, int count, int limit, string field);

    [LoggerMessage(45, LogLevel.Warning, "Suppressed {Count} more {Reason} refusal line(s) in the last {Seconds}s (at most {Lines} a reason per interval are written; the metrics count every one)")]
    public static partial void RefusalLinesSuppressed(ILogger logger, int count, string reason, double seconds, int lines);

    [LoggerMessage(46, LogLevel.Warning, "limits.http2.maxStreamRefusalsPerSecond is {Limit} but this process already runs with {Applied} (Kestrel reads it once per process); restart to apply it")]
    public static partial void StreamRefusalLimitFixed(ILogger logger, int limit, int applied);

    [LoggerMessage(70, LogLevel.Information, "Webhook listening on https://{Address} (TokenReview at /authenticate, SubjectAccessReview at /authorize)")]
    public static partial void WebhookListening(ILogger logger, string address);

    [LoggerMessage(71, LogLevel.Information, "Bad {Review} from {Remote}: {Reason}")]
    public static partial void WebhookBadReview(ILogger logger, string review, string remote, string reason);

    [LoggerMessage(72, LogLevel.Warning, "TokenReview for {User} refused by the deny list ({Entry})")]
    public static partial void WebhookTokenDenied(ILogger logger, string user, string entry);

    [LoggerMessage(73, LogLevel.Warning, "TokenReview failed with an authenticator error: {Reason}")]
    public static partial void WebhookTokenError(ILogger logger, string reason);
}
