using System.Net.Security;

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

    /// <summary>
    /// The .NET policy for <c>tls.cipherSuites</c>; the default is ECDHE + AEAD only. The TLS 1.2 names listed are the TLS
    /// 1.2 suites; TLS 1.3 names, when listed, limit TLS 1.3, and when none is listed all three TLS 1.3 suites stay (as
    /// kube-apiserver, whose --tls-cipher-suites does not touch TLS 1.3): a list of TLS 1.2 suites alone must not leave
    /// TLS 1.3, which stays enabled, with no suite at all — OpenSSL then refuses every handshake.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public static CipherSuitesPolicy CreatePolicy(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var selected = (names.Count == 0 ? Allowed : names).Select(Map).Distinct().ToList();
        if (!selected.Any(IsTls13))
        {
            selected.AddRange([TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256]);
        }
        return new CipherSuitesPolicy(selected);
    }

    private static bool IsTls13(TlsCipherSuite suite) =>
        suite is TlsCipherSuite.TLS_AES_128_GCM_SHA256 or TlsCipherSuite.TLS_AES_256_GCM_SHA384 or TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256;

    private static TlsCipherSuite Map(string name) => name switch
    {
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => Enum.Parse<TlsCipherSuite>(name),
    };
}
