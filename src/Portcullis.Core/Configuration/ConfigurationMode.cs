namespace Portcullis.Configuration;

/// <summary>
/// What a <see cref="GatewayConfiguration"/> is loaded for: <c>portcullis serve</c> (the gateway in front of
/// kube-apiserver) or <c>portcullis webhook</c> (TokenReview and SubjectAccessReview webhooks a kube-apiserver calls).
/// The file format is the same; the mode decides which fields are required and which are refused.
/// </summary>
public enum ConfigurationMode
{
    Serve = 0,
    Webhook = 1,
}

/// <summary>
/// The fields <c>portcullis webhook</c> refuses: each would be accepted and do nothing (or do harm) when the API server
/// calls Portcullis instead of Portcullis forwarding to it. Nothing is silently ignored.
/// </summary>
internal static class WebhookModeRules
{
    public static void Check(GatewayConfiguration c, Action<string, string> fail)
    {
        if (c.Upstream is not null)
        {
            fail("upstream", "is not used by portcullis webhook: the API server calls Portcullis, which forwards nothing; remove the section (or run portcullis serve)");
        }
        if (c.Tls is { ClientCAFile.Length: 0 })
        {
            fail("tls.clientCAFile", "is required by portcullis webhook: only a client certificate signed by this CA (the API server's webhook client certificate) may ask for reviews");
        }
        foreach (var field in c.WrittenBelow("admission"))
        {
            fail(field, "has no meaning in webhook mode: the API server's own admission, rate limits and API Priority and Fairness apply to its requests; Portcullis only answers reviews");
        }
        if (c.Authentication.Anonymous.Enabled)
        {
            fail("authentication.anonymous.enabled", "cannot be true in webhook mode: a TokenReview always carries a token; the API server's own --anonymous-auth decides requests without one");
        }
        if (c.Authorization.Modes.Contains(AuthorizationModes.AlwaysAllow))
        {
            fail("authorization.modes", "AlwaysAllow cannot be used in webhook mode: it would answer allowed: true for every review, users Portcullis never authenticated included; leave it out, and what Portcullis has no opinion on falls through to the API server's RBAC");
        }
        if (c.Authorization.NetworkScopes.Count > 0)
        {
            fail("authorization.networkScopes", "cannot be enforced in webhook mode: a SubjectAccessReview carries no source address, so no scope could ever match; enforce scopes with portcullis serve in front of the API server");
        }
        if (c.Network.AutoBan.Enabled)
        {
            fail("network.autoBan.enabled", "cannot be true in webhook mode: the webhook's only client is the API server, and banning its address would stop every review");
        }
    }
}
