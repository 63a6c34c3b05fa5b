namespace Portcullis.Tls;

/// <summary>The TLS cipher suites the gateway accepts in <c>tls.cipherSuites</c> (CIS 1.2.29's list).</summary>
public static class TlsCipherSuites
{
    public static readonly IReadOnlyList<string> Allowed =
    [
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ];

    public static bool IsAllowed(string name) => Allowed.Contains(name);

    /// <summary>The three TLS 1.3 suites; every other allowed name is a TLS 1.2 suite.</summary>
    public static bool IsTls13(string name) => name is "TLS_AES_128_GCM_SHA256" or "TLS_AES_256_GCM_SHA384" or "TLS_CHACHA20_POLY1305_SHA256";
}
