namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// The bounded values of the <c>reason</c> label of <c>portcullis_network_refused_connections_total</c> (L1, a connection
/// closed before any TLS byte) and <c>portcullis_tls_refused_client_certificates_total</c> (L2, a handshake refused for
/// its client certificate). Every value is a constant: no address, subject or other client text ever becomes a label.
/// </summary>
internal static class RefusalReasons
{
    /// <summary>L1: the source address is outside <c>network.allow</c> or inside <c>network.deny</c>.</summary>
    public const string NetworkPolicy = "network_policy";
    /// <summary>L1: the source address is banned (<c>network.autoBan</c> or <c>portcullis bans add</c>).</summary>
    public const string Banned = "banned";

    /// <summary>L1: a PROXY protocol header missing from a trusted proxy, malformed, oversized or late, or sent by
    /// another peer (<c>network.proxyProtocol</c>).</summary>
    public const string ProxyProtocol = "proxy_protocol";
    /// <summary>L1: the source address already holds <c>network.connections.maxPerSource</c> connections.</summary>
    public const string SourceConnectionLimit = "source_connection_limit";
    /// <summary>L1: the gateway already holds <c>network.connections.maxTotal</c> connections.</summary>
    public const string TotalConnectionLimit = "total_connection_limit";

    /// <summary>Every L1 reason, each exported at 0 from the start so dashboards see the series before the first refusal.</summary>
    public static readonly string[] Connection = [NetworkPolicy, Banned, ProxyProtocol, SourceConnectionLimit, TotalConnectionLimit];

    /// <summary>L2: the certificate does not chain to <c>tls.clientCAFile</c>, is expired or not yet valid, or lacks clientAuth.</summary>
    public const string Untrusted = "untrusted";

    /// <summary>L2: the certificate is valid for longer than <c>tls.clientCertificates.maxLifetime</c> (action refuse).</summary>
    public const string Lifetime = "lifetime";

    /// <summary>L2: the certificate chains but is on <c>tls.revocationFile</c> (an entry or one of its CRLs).</summary>
    public const string Revoked = "revoked";

    /// <summary>Every L2 reason, each exported at 0 from the start.</summary>
    /// <summary>No client certificate where one is required (<c>portcullis webhook</c>: only the API server gets in).</summary>
    public const string Missing = "missing";

    public static readonly string[] Certificate = [Untrusted, Revoked, Lifetime, Missing];
}
