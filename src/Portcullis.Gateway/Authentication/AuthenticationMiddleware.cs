using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Gateway.Hosting;
using Portcullis.Gateway.Metrics;
using Portcullis.Gateway.Pipeline;
using Portcullis.Http;

namespace Portcullis.Gateway.Authentication;

/// <summary>
/// L3: x509 (identity from the certificate verified at the handshake, cached per connection), bearer tokens from the
/// token file, anonymous only when no credential at all was presented. Failure ends the request with kube-apiserver's
/// exact 401 body; <c>system:authenticated</c> is added as kube-apiserver's AuthenticatedGroupAdder does.
/// </summary>
internal sealed class AuthenticationMiddleware(RequestDelegate next, GatewayMetrics metrics, ILogger<AuthenticationMiddleware> logger, TimeProvider time)
{
    private const string X509CacheKey = "portcullis.x509.user";

    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetGatewayFeature();
        var start = time.GetTimestamp();
        var result = Authenticate(context, feature.Snapshot);
        var seconds = time.GetElapsedTime(start).TotalSeconds;

        switch (result.Outcome)
        {
            case AuthenticationOutcome.Success:
                metrics.AuthenticationAttempts.WithLabels("success").Inc();
                metrics.AuthenticationDuration.WithLabels("success").Observe(seconds);
                feature.User = result.User!.Name == UserInfo.Anonymous ? result.User : result.User.WithAuthenticatedGroup();
                feature.Authenticator = result.Authenticator;
                if (result.Authenticator == "x509")
                {
                    feature.CertificateSerial = context.Connection.ClientCertificate?.SerialNumber;
                }
                else if (BearerToken(context.Request.Headers.Authorization.Count == 1 ? context.Request.Headers.Authorization[0] : null) is { } token)
                {
                    feature.TokenSha256 = TokenFile.Digest(token);
                }
                feature.Annotations["portcullis.dev/authenticator"] = result.Authenticator;
                return next(context);
            default:
                metrics.AuthenticationAttempts.WithLabels("failure").Inc();
                metrics.AuthenticationDuration.WithLabels("failure").Observe(seconds);
                var reason = result.Error ?? "no credentials provided";
                feature.Annotations["portcullis.dev/authentication"] = reason;
                feature.RejectedBy = "authentication";
                Log.AuthenticationFailed(logger, context.Connection.RemoteIpAddress?.ToString() ?? "", reason);
                metrics.RequestsRejected.WithLabels("authentication", "401").Inc();
                return StatusResponses.WriteAsync(context, 401, result.Authenticator == "passthrough" ? PassthroughX509Body : Status.Unauthorized);
        }
    }

    private static readonly byte[] PassthroughX509Body = Status.Failure(
        "Unauthorized: upstream.identity is Passthrough, which forwards bearer tokens only; a client certificate cannot be passed through",
        "Unauthorized", 401);

    private static AuthenticationResult Authenticate(HttpContext context, GatewaySnapshot snapshot)
    {
        var authorization = context.Request.Headers.Authorization;
        if (authorization.Count > 1)
        {
            return AuthenticationResult.Fail("bearer", "more than one Authorization header");
        }
        string? token = null;
        if (authorization.Count == 1)
        {
            token = BearerToken(authorization[0]);
        }

        var certUser = CertificateUser(context);
        var errors = new List<string>();
        UserInfo? tokenUser = null;
        var tokenAuthenticator = "";
        if (token is not null)
        {
            if (snapshot.Tokens?.Find(token) is { } u)
            {
                tokenUser = u;
                tokenAuthenticator = "token-file";
            }
            else
            {
                errors.Add("invalid bearer token");
            }
        }

        if (snapshot.IdentityMode == UpstreamIdentityModes.Passthrough && certUser is not null && token is null)
        {
            return AuthenticationResult.Fail("passthrough", "client certificate cannot be passed through");
        }
        if (certUser is not null && tokenUser is not null && certUser.Name != tokenUser.Name)
        {
            // Two credentials for two different users in one request: refuse rather than pick one (Pinniped's rule).
            return AuthenticationResult.Fail("x509+bearer", "client certificate and bearer token name different users");
        }
        if (certUser is not null)
        {
            return AuthenticationResult.Success(certUser, "x509");
        }
        if (tokenUser is not null)
        {
            return AuthenticationResult.Success(tokenUser, tokenAuthenticator);
        }
        if (errors.Count > 0)
        {
            return AuthenticationResult.Fail("bearer", string.Join("; ", errors));
        }
        var anonymous = snapshot.Config.Authentication.Anonymous;
        if (anonymous.Enabled && (anonymous.Paths.Count == 0 || anonymous.Paths.Contains(context.Request.Path.Value ?? "")))
        {
            return AuthenticationResult.Success(UserInfo.AnonymousUser, "anonymous");
        }
        return AuthenticationResult.NoResult;
    }

    /// <summary>kube-apiserver's bearer parsing: split on single spaces, scheme case-insensitive, an empty token is ignored.</summary>
    internal static string? BearerToken(string? header)
    {
        if (header is null)
        {
            return null;
        }
        var parts = header.Trim().Split(' ', 3);
        if (parts.Length < 2 || !parts[0].Equals("bearer", StringComparison.OrdinalIgnoreCase) || parts[1].Length == 0)
        {
            return null;
        }
        return parts[1];
    }

    private static UserInfo? CertificateUser(HttpContext context)
    {
        var cert = context.Connection.ClientCertificate;
        if (cert is null)
        {
            return null;
        }
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is not null && items.TryGetValue(X509CacheKey, out var cached))
        {
            return cached as UserInfo;
        }
        var user = X509User.From(cert);
        if (items is not null)
        {
            items[X509CacheKey] = user;
        }
        return user;
    }
}

/// <summary>CN → user name, every O → groups, as kube-apiserver's x509 authenticator does. Empty CN gives no user.</summary>
internal static class X509User
{
    public static UserInfo? From(System.Security.Cryptography.X509Certificates.X509Certificate2 cert)
    {
        string? cn = null;
        var groups = new List<string>();
        foreach (var rdn in cert.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            var oid = rdn.GetSingleElementType().Value;
            var value = rdn.GetSingleElementValue() ?? "";
            if (oid == "2.5.4.3")
            {
                cn = value;
            }
            else if (oid == "2.5.4.10")
            {
                groups.Add(value);
            }
        }
        if (string.IsNullOrEmpty(cn))
        {
            return null;
        }
        var extra = new Dictionary<string, IReadOnlyList<string>>
        {
            ["authentication.kubernetes.io/credential-id"] = ["X509SHA256=" + Convert.ToHexStringLower(cert.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256))],
        };
        return UserInfo.Create(cn, groups, extra: extra);
    }
}
