using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Portcullis.Authentication;
using Portcullis.Authentication.Webhook;
using Portcullis.Authorization;
using Portcullis.Authorization.Impersonation;
using Portcullis.Authorization.Rbac;
using Portcullis.Authorization.Webhook;
using Portcullis.Configuration;
using Portcullis.Sandbox.Identity;

namespace Portcullis.Sandbox.Security;

/// <summary>
/// Webhook mode's request stage, in kube-apiserver's order: authentication (the client certificate's CN and O, else the
/// bearer token through the TokenReview webhook, cached), impersonation (each Impersonate-* header authorized with verb
/// impersonate), then authorization (<c>system:masters</c>, then the configured authorizers; the first allow or deny
/// wins; all no opinion is 403). Refusals are kube-apiserver's answers: 401 and 403 Status bodies, 500 text when an
/// authorizer erred and none allowed.
/// </summary>
internal sealed class ApiServerSecurity : IDisposable
{
    private readonly AuthenticatorChain? _tokens;

    private ApiServerSecurity(AuthenticatorChain? tokens, AuthorizerChain authorizers)
    {
        _tokens = tokens;
        Authorizers = authorizers;
    }

    /// <summary>The authorizers in the order they are asked (<c>system:masters</c> first).</summary>
    public AuthorizerChain Authorizers { get; }

    /// <summary>The token webhook, when configured (its <see cref="WebhookTokenAuthenticator.Calls"/> counts reviews sent).</summary>
    public WebhookTokenAuthenticator? TokenWebhook => _tokens?.TokenAuthenticators.OfType<WebhookTokenAuthenticator>().FirstOrDefault();

    /// <summary>Builds the stage; every configuration problem is reported at once in a <see cref="ConfigurationException"/>.</summary>
    public static ApiServerSecurity Create(SandboxSecurityOptions options, TimeProvider time)
    {
        var errors = new List<ConfigError>();
        AuthenticatorChain? tokens = null;
        if (options.TokenWebhookKubeconfig is { } kubeconfig)
        {
            try
            {
                var webhook = WebhookTokenAuthenticator.FromKubeconfig(kubeconfig, new WebhookTokenAuthenticatorOptions
                {
                    Version = options.TokenWebhookVersion,
                    CacheTtl = options.TokenWebhookCacheTtl,
                    // kube-apiserver caches both answers for --authentication-token-webhook-cache-ttl.
                    NegativeCacheTtl = options.TokenWebhookCacheTtl,
                    Audiences = options.ApiAudiences,
                }, time);
                tokens = new AuthenticatorChain(null, [webhook], AnonymousPolicy.Disabled, null,
                    new AuthenticatorChainOptions { Time = time, NegativeCacheTtl = options.TokenWebhookCacheTtl });
            }
            catch (Exception ex) when (ex is IOException or FormatException or ArgumentException or UnauthorizedAccessException
                or System.Security.Cryptography.CryptographicException or YamlDotNet.Core.YamlException)
            {
                errors.Add(new ConfigError(kubeconfig, 0, "--authentication-webhook", ex.Message));
            }
        }

        var authorizers = new List<IAuthorizer> { new SystemMastersAuthorizer() };
        var entries = options.Authorizers.Count > 0 ? options.Authorizers : [new AuthorizationConfigurationFile.AuthorizerConfiguration { Type = "RBAC", Name = "rbac" }];
        foreach (var entry in entries)
        {
            switch (entry.Type)
            {
                case "Webhook" when entry.Webhook is { } w:
                    try
                    {
                        var webhook = WebhookAuthorizer.Create(w.ConnectionInfo.KubeConfigFile, new WebhookAuthorizerOptions
                        {
                            Version = w.SubjectAccessReviewVersion,
                            AuthorizedTtl = w.EffectiveAuthorizedTtl,
                            UnauthorizedTtl = w.EffectiveUnauthorizedTtl,
                            Timeout = w.Timeout ?? TimeSpan.FromSeconds(30),
                            FailurePolicy = w.FailurePolicy,
                        }, time);
                        var conditions = w.MatchConditions.Select(c => c.Compiled ?? Authentication.Oidc.CelExpression.Compile(c.Expression)).ToList();
                        authorizers.Add(conditions.Count == 0 ? webhook : new MatchConditionAuthorizer(webhook, conditions, w.FailurePolicy == "Deny"));
                    }
                    catch (ConfigurationException ex)
                    {
                        errors.AddRange(ex.Errors);
                    }
                    catch (Exception ex) when (ex is IOException or FormatException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
                    {
                        errors.Add(new ConfigError(w.ConnectionInfo.KubeConfigFile, 0, $"authorizer \"{entry.Name}\"", ex.Message));
                    }
                    break;
                case "RBAC":
                    if (LoadRbac(options.RbacManifests, errors) is { } policy)
                    {
                        authorizers.Add(new RbacAuthorizer(policy));
                    }
                    break;
                case "Node":
                    authorizers.Add(new NodeAuthorizer());
                    break;
                case "AlwaysAllow":
                    authorizers.Add(new AlwaysAllowAuthorizer());
                    break;
                case "AlwaysDeny":
                    authorizers.Add(new AlwaysDenyAuthorizer());
                    break;
                default:
                    errors.Add(new ConfigError("(authorizers)", 0, $"authorizer \"{entry.Name}\"", $"type {entry.Type} is not supported by the sandbox (Webhook, RBAC, Node, AlwaysAllow, AlwaysDeny are)"));
                    break;
            }
        }
        if (errors.Count > 0)
        {
            tokens?.Dispose();
            foreach (var a in authorizers.OfType<IDisposable>())
            {
                a.Dispose();
            }
            throw new ConfigurationException(errors);
        }
        return new ApiServerSecurity(tokens, new AuthorizerChain(authorizers));
    }

    /// <summary>The manifests plus the bootstrap roles and bindings they do not define themselves.</summary>
    private static RbacPolicy? LoadRbac(IReadOnlyList<string> paths, List<ConfigError> errors)
    {
        var notes = new List<string>();
        var reader = new RbacManifestReader(errors, notes);
        var before = errors.Count;
        foreach (var path in paths)
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                errors.Add(new ConfigError(path, 0, "--rbac", "no such file or folder"));
                continue;
            }
            reader.ReadPath(path);
        }
        if (errors.Count > before)
        {
            return null;
        }
        var roles = reader.Roles.Concat(BootstrapRbac.Roles.Where(b => !reader.Roles.Any(r => r.IsClusterRole && r.Name == b.Name)));
        var bindings = reader.Bindings.Concat(BootstrapRbac.Bindings.Where(b => !reader.Bindings.Any(r => r.IsClusterRoleBinding && r.Name == b.Name)));
        return RbacPolicy.Build(roles, bindings, errors);
    }

    /// <summary>
    /// Authenticates, applies impersonation and authorizes <paramref name="context"/>. True: the request may proceed and
    /// <see cref="VerifiedIdentityFeature"/> holds its identity. False: the refusal has been written.
    /// </summary>
    public async Task<bool> AdmitAsync(HttpContext context)
    {
        var request = context.Request;
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path.ToUriComponent() + request.QueryString;
        var question = rawTarget.IndexOf('?', StringComparison.Ordinal);
        var rawPath = question < 0 ? rawTarget : rawTarget[..question];
        var query = question < 0 ? "" : rawTarget[(question + 1)..];

        var user = await AuthenticateAsync(context, rawPath);
        if (user is null)
        {
            context.Features.Set(new VerifiedIdentityFeature(new RequestIdentity("", [], null, UserInfo.NoExtra, "unauthenticated")));
            await WriteAsync(context, 401, "application/json", Portcullis.Http.Status.Unauthorized);
            return false;
        }
        context.Features.Set(new VerifiedIdentityFeature(Identity(user, "authenticated")));

        if (!RequestInfoParser.TryParse(request.Method, rawPath, query, out var info, out var infoError))
        {
            await WriteAsync(context, infoError.StatusCode, "application/json",
                Portcullis.Http.Status.Failure(infoError.Message, infoError.StatusCode == 400 ? "BadRequest" : "InternalError", infoError.StatusCode));
            return false;
        }

        var impersonation = ImpersonationHeaders.Parse(ImpersonationHeaderPairs(request.Headers));
        if (impersonation.BadRequestMessage is { } bad)
        {
            await WriteAsync(context, 400, "application/json", Portcullis.Http.Status.Failure(bad, "BadRequest", 400));
            return false;
        }
        if (impersonation.Plan is { } plan)
        {
            var checks = await ImpersonationHeaders.AuthorizeAsync(Authorizers, user, plan, null, null, null, context.RequestAborted);
            if (!checks.Allowed)
            {
                if (checks.Result.IsInternalError)
                {
                    await WriteAsync(context, 500, "text/plain; charset=utf-8",
                        System.Text.Encoding.UTF8.GetBytes(AuthorizerChain.InternalErrorMessage(rawTarget, checks.Result.Error!)));
                }
                else
                {
                    await WriteAsync(context, 403, "application/json", checks.ForbiddenBody(user.Name));
                }
                return false;
            }
            user = plan.ImpersonatedUser;
            context.Features.Set(new VerifiedIdentityFeature(Identity(user, "impersonation")));
        }

        var decision = await Authorizers.AuthorizeAsync(new AuthorizationAttributes(user, info), context.RequestAborted);
        if (decision.IsAllowed)
        {
            return true;
        }
        if (decision.IsInternalError)
        {
            // kube-apiserver's WithAuthorization: an authorizer error without an allow is a 500, whatever the decision.
            await WriteAsync(context, 500, "text/plain; charset=utf-8",
                System.Text.Encoding.UTF8.GetBytes(AuthorizerChain.InternalErrorMessage(rawTarget, decision.Error!)));
            return false;
        }
        await WriteAsync(context, 403, "application/json", Forbidden.Body(user.Name, info, decision.Reason));
        return false;
    }

    private async Task<UserInfo?> AuthenticateAsync(HttpContext context, string rawPath)
    {
        if (context.Connection.ClientCertificate is X509Certificate2 certificate)
        {
            // x509 comes first in kube-apiserver's union: a verified certificate decides, a token beside it is not read.
            var fromCertificate = RequestIdentity.FromCertificate(certificate);
            return fromCertificate.Username.Length == 0 ? null : UserInfo.Create(fromCertificate.Username, fromCertificate.Groups).WithAuthenticatedGroup();
        }
        if (_tokens is null)
        {
            return null;
        }
        var headers = context.Request.Headers;
        var upgrade = headers.Upgrade.Count > 0 || headers.Connection.ToString().Contains("upgrade", StringComparison.OrdinalIgnoreCase);
        var result = await _tokens.AuthenticateAsync(new AuthenticationRequest
        {
            AuthorizationHeaders = [.. headers.Authorization.Where(v => v is not null).Select(v => v!)],
            WebSocketProtocols = [.. headers.SecWebSocketProtocol.Where(v => v is not null).Select(v => v!)],
            IsUpgrade = upgrade,
            Path = Uri.UnescapeDataString(rawPath),
        }, context.RequestAborted);
        return result.Authenticated ? result.User : null;
    }

    private static IEnumerable<KeyValuePair<string, string>> ImpersonationHeaderPairs(IHeaderDictionary headers)
    {
        foreach (var (name, values) in headers)
        {
            if (!ImpersonationHeaders.IsImpersonationHeader(name))
            {
                continue;
            }
            foreach (var value in values)
            {
                yield return new(name, value ?? "");
            }
        }
    }

    private static RequestIdentity Identity(UserInfo user, string source) =>
        new(user.Name, user.Groups, user.Uid.Length == 0 ? null : user.Uid, user.Extra, source);

    private static async Task WriteAsync(HttpContext context, int status, string contentType, byte[] body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        context.Response.Headers.XContentTypeOptions = "nosniff";
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }

    public void Dispose()
    {
        _tokens?.Dispose();
        Authorizers.Dispose();
    }
}
