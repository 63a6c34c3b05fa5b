using Portcullis.Tls;

namespace Portcullis.Authentication;

/// <summary>
/// What the chain needs from one HTTP request, with no ASP.NET types: the gateway fills it from the connection's cached
/// client-certificate result (<see cref="ClientCertificateValidator"/>) and the request headers.
/// </summary>
public sealed class AuthenticationRequest
{
    /// <summary>
    /// The connection's cached <see cref="ClientCertificateValidator.Validate"/> result. Preferred over
    /// <see cref="ClientCertificateUser"/>/<see cref="ClientCertificateError"/>: the chain then reuses one result object per
    /// connection, so the x509 path allocates nothing per request.
    /// </summary>
    public ClientCertificateResult? ClientCertificate { get; init; }

    /// <summary>The identity of a client certificate that verified against the client CA bundle, or null.</summary>
    public UserInfo? ClientCertificateUser { get; init; }

    /// <summary>Why a presented client certificate failed verification (kube-apiserver: an error, so 401), or null.</summary>
    public string? ClientCertificateError { get; init; }

    /// <summary>Every <c>Authorization</c> header value, as received (more than one is refused).</summary>
    public IReadOnlyList<string> AuthorizationHeaders { get; init; } = [];

    /// <summary>Every <c>Sec-WebSocket-Protocol</c> header value, as received (each may be a comma-separated list).</summary>
    public IReadOnlyList<string> WebSocketProtocols { get; init; } = [];

    /// <summary>True for an upgrade request (WebSocket/SPDY); only then is the subprotocol token read, as kube-apiserver does.</summary>
    public bool IsUpgrade { get; init; }

    /// <summary>The URL path, for anonymous path conditions (exact match, as <c>URL.Path</c>).</summary>
    public string Path { get; init; } = "/";
}
