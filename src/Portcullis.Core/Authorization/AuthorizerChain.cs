using Portcullis.Authorization.DenyLists;
using Portcullis.Authorization.NetworkScopes;
using Portcullis.Authorization.Rbac;
using Portcullis.Authorization.Review;
using Portcullis.Authorization.Webhook;
using Portcullis.Configuration;

namespace Portcullis.Authorization;

/// <summary>Things the chain needs that do not come from the configuration file.</summary>
public sealed record AuthorizerChainOptions
{
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    /// <summary>Where the authorizers log (webhook outages); the gateway passes its own.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory LoggerFactory { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
    /// <summary>When false, the Webhook mode is left out (e.g. for an offline <c>explain</c>).</summary>
    public bool IncludeWebhook { get; init; } = true;
}

/// <summary>
/// The authorization layer: deny list → network scopes → <c>system:masters</c> → the modes of
/// <c>authorization.modes</c> in order, with kube-apiserver's union semantics (spec §4.1): the first Allow or Deny wins
/// with its reason and error; when all say NoOpinion, the non-empty reasons are joined with "\n" and the errors kept.
/// The gateway then proceeds on Allow, answers 500 when <see cref="AuthorizationResult.IsInternalError"/>, else 403.
/// </summary>
/// <remarks>
/// kube-apiserver runs its <c>system:masters</c> authorizer first. Portcullis puts its own restricting layers (deny list,
/// network scopes) before it on purpose: a stolen <c>system:masters</c> credential must be deniable, and "masters only
/// from the admin VPN" must hold. Among the modes, the order and semantics are kube-apiserver's.
/// </remarks>
public sealed class AuthorizerChain : IAuthorizer, IDisposable
{
    public const string ChainName = "chain";

    private readonly IAuthorizer[] _authorizers;

    public AuthorizerChain(IEnumerable<IAuthorizer> authorizers)
    {
        _authorizers = [.. authorizers];
        foreach (var a in _authorizers)
        {
            switch (a)
            {
                case RbacAuthorizer r: Rbac = r; break;
                case DenyListAuthorizer d: DenyList = d; break;
                case NetworkScopeAuthorizer n: NetworkScopes = n; break;
                case WebhookAuthorizer w: Webhook = w; break;
                default: break;
            }
        }
    }

    public string Name => ChainName;

    /// <summary>The authorizers in the order they are asked.</summary>
    public IReadOnlyList<IAuthorizer> Authorizers => _authorizers;

    /// <summary>The RBAC mode, when configured; reload with <c>Rbac.Update(RbacPolicy.Load(...).Policy)</c>.</summary>
    public RbacAuthorizer? Rbac { get; }

    /// <summary>The deny list layer, when <c>denyListFile</c> is set; reload with <c>DenyList.Update(...)</c>.</summary>
    public DenyListAuthorizer? DenyList { get; }

    public NetworkScopeAuthorizer? NetworkScopes { get; }

    public WebhookAuthorizer? Webhook { get; }

    /// <summary>Builds the chain from a loaded configuration; throws <see cref="ConfigurationException"/> with every error.</summary>
    public static AuthorizerChain Create(GatewayConfiguration config, AuthorizerChainOptions? options = null)
    {
        var (chain, errors) = TryCreate(config, options);
        return chain ?? throw new ConfigurationException(errors);
    }

    /// <summary>Builds the chain; returns every error (RBAC files, deny list, webhook kubeconfig) instead of throwing.</summary>
    public static (AuthorizerChain? Chain, IReadOnlyList<ConfigError> Errors) TryCreate(GatewayConfiguration config, AuthorizerChainOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new AuthorizerChainOptions();
        var errors = new List<ConfigError>();
        var authz = config.Authorization;
        var list = new List<IAuthorizer>();

        if (authz.DenyListFile.Length > 0)
        {
            var (denyList, denyErrors) = DenyLists.DenyList.Load(config.Resolve(authz.DenyListFile));
            errors.AddRange(denyErrors);
            if (denyList is not null)
            {
                list.Add(new DenyListAuthorizer(denyList, options.TimeProvider));
            }
        }
        for (var i = 0; i < authz.NetworkScopes.Count; i++)
        {
            for (var j = 0; j < authz.NetworkScopes[i].Subjects.Count; j++)
            {
                var subject = authz.NetworkScopes[i].Subjects[j];
                if (subject.Kind == "ServiceAccount" && subject.Namespace.Length == 0)
                {
                    errors.Add(new ConfigError(config.SourcePath, 0, $"authorization.networkScopes[{i}].subjects[{j}].namespace", $"is required for ServiceAccount \"{subject.Name}\""));
                }
            }
        }
        if (authz.NetworkScopes.Count > 0)
        {
            list.Add(NetworkScopeAuthorizer.FromConfiguration(authz.NetworkScopes));
        }
        list.Add(new SystemMastersAuthorizer());
        foreach (var mode in authz.Modes)
        {
            switch (mode)
            {
                case AuthorizationModes.AlwaysAllow:
                    list.Add(new AlwaysAllowAuthorizer());
                    break;
                case AuthorizationModes.AlwaysDeny:
                    list.Add(new AlwaysDenyAuthorizer());
                    break;
                case AuthorizationModes.Rbac:
                    var loaded = RbacPolicy.Load(authz.Rbac.Manifests.Select(config.Resolve));
                    errors.AddRange(loaded.Errors);
                    if (loaded.Policy is not null)
                    {
                        list.Add(new RbacAuthorizer(loaded.Policy));
                    }
                    break;
                case AuthorizationModes.Webhook:
                    if (!options.IncludeWebhook)
                    {
                        break;
                    }
                    try
                    {
                        list.Add(WebhookAuthorizer.Create(config.Resolve(authz.Webhook.ConfigFile), WebhookAuthorizerOptions.From(authz.Webhook), options.TimeProvider,
                            Microsoft.Extensions.Logging.LoggerFactoryExtensions.CreateLogger<WebhookAuthorizer>(options.LoggerFactory)));
                    }
                    catch (ConfigurationException ex)
                    {
                        errors.AddRange(ex.Errors);
                    }
                    break;
                default:
                    errors.Add(new ConfigError(config.SourcePath, 0, "authorization.modes", $"\"{mode}\" is not one of {string.Join(", ", AuthorizationModes.All)}"));
                    break;
            }
        }
        if (errors.Count > 0)
        {
            foreach (var a in list.OfType<IDisposable>())
            {
                a.Dispose();
            }
            return (null, errors);
        }
        return (new AuthorizerChain(list), errors);
    }

    /// <summary>kube-apiserver's evaluation error for an authorizer that cannot list rules (its webhook's RulesFor).</summary>
    public const string NoRuleResolution = "webhook authorizer does not support user rule resolution";

    /// <summary>
    /// What <paramref name="identity"/> (the effective user, its credential and source address) may do in
    /// <paramref name="ns"/> — kube-apiserver's union <c>RulesFor</c> over the same layers this chain asks, in order:
    /// the deny list and network scopes refuse every request of a user they match, so such a user has no rules at all
    /// (complete: nothing is allowed); <c>system:masters</c> and AlwaysAllow contribute "everything"; AlwaysDeny nothing;
    /// RBAC the rules of the bindings that name the user (a missing role is an evaluation error); the Webhook mode cannot
    /// list rules, which makes the answer incomplete with kube-apiserver's error. Errors are aggregated as
    /// kube-apiserver aggregates them (one alone, several as "[e1, e2]", duplicates once).
    /// </summary>
    public SubjectRules RulesFor(AuthorizationAttributes identity, string ns)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(ns);
        var resourceRules = new List<ResourceRule>();
        var nonResourceRules = new List<NonResourceRule>();
        var errors = new List<string>();
        var incomplete = false;
        foreach (var authorizer in _authorizers)
        {
            switch (authorizer)
            {
                case DenyListAuthorizer d when d.Match(identity) is not null:
                    return new SubjectRules([], [], false, "", DenyListAuthorizer.AuthorizerName);
                case NetworkScopeAuthorizer n when n.Violated(identity.User, identity.SourceAddress) is not null:
                    return new SubjectRules([], [], false, "", NetworkScopeAuthorizer.AuthorizerName);
                case DenyListAuthorizer or NetworkScopeAuthorizer or AlwaysDenyAuthorizer:
                    break;
                case SystemMastersAuthorizer:
                    if (SystemMastersAuthorizer.HasGroup(identity.User, Authentication.UserInfo.MastersGroup))
                    {
                        resourceRules.Add(SubjectRules.AllResources);
                        nonResourceRules.Add(SubjectRules.AllPaths);
                    }
                    break;
                case AlwaysAllowAuthorizer:
                    resourceRules.Add(SubjectRules.AllResources);
                    nonResourceRules.Add(SubjectRules.AllPaths);
                    break;
                case RbacAuthorizer r:
                    foreach (var rule in r.Policy.RulesFor(identity.User, ns, errors))
                    {
                        if (rule.Resources.Length > 0)
                        {
                            resourceRules.Add(new ResourceRule(rule.Verbs, rule.ApiGroups, rule.Resources, rule.ResourceNames));
                        }
                        if (rule.NonResourceURLs.Length > 0)
                        {
                            nonResourceRules.Add(new NonResourceRule(rule.Verbs, rule.NonResourceURLs));
                        }
                    }
                    break;
                case WebhookAuthorizer:
                    incomplete = true;
                    errors.Add(NoRuleResolution);
                    break;
                default:
                    incomplete = true;
                    errors.Add($"the {authorizer.Name} authorizer does not support user rule resolution");
                    break;
            }
        }
        var distinct = errors.Distinct(StringComparer.Ordinal).ToList();
        var error = distinct.Count switch
        {
            0 => "",
            1 => distinct[0],
            _ => "[" + string.Join(", ", distinct) + "]",
        };
        return new SubjectRules(resourceRules, nonResourceRules, incomplete, error);
    }

    /// <summary>The 500 body text kube-apiserver writes when authorization errs without an allow (text/plain).</summary>
    public static string InternalErrorMessage(string requestUri, string error) => $"Internal Server Error: \"{requestUri}\": {error}";

    public ValueTask<AuthorizationResult> AuthorizeAsync(AuthorizationAttributes attributes, CancellationToken cancellationToken)
    {
        string? reasons = null;
        string? errors = null;
        for (var i = 0; i < _authorizers.Length; i++)
        {
            var pending = _authorizers[i].AuthorizeAsync(attributes, cancellationToken);
            if (!pending.IsCompletedSuccessfully)
            {
                return SlowAsync(pending, i, attributes, reasons, errors, cancellationToken);
            }
            var result = pending.Result;
            if (result.Decision != AuthorizationDecision.NoOpinion)
            {
                return new(result);
            }
            Collect(result, ref reasons, ref errors);
        }
        return new(Final(reasons, errors));
    }

    private async ValueTask<AuthorizationResult> SlowAsync(ValueTask<AuthorizationResult> pending, int index, AuthorizationAttributes attributes,
        string? reasons, string? errors, CancellationToken cancellationToken)
    {
        for (var i = index; i < _authorizers.Length; i++)
        {
            var result = i == index ? await pending.ConfigureAwait(false) : await _authorizers[i].AuthorizeAsync(attributes, cancellationToken).ConfigureAwait(false);
            if (result.Decision != AuthorizationDecision.NoOpinion)
            {
                return result;
            }
            Collect(result, ref reasons, ref errors);
        }
        return Final(reasons, errors);
    }

    private static void Collect(AuthorizationResult result, ref string? reasons, ref string? errors)
    {
        if (result.Reason.Length > 0)
        {
            reasons = reasons is null ? result.Reason : reasons + "\n" + result.Reason;
        }
        if (!string.IsNullOrEmpty(result.Error))
        {
            // utilerrors aggregate: one error alone, several as [e1, e2]
            errors = errors is null ? result.Error : errors + ", " + result.Error;
        }
    }

    private static AuthorizationResult Final(string? reasons, string? errors)
    {
        if (errors is not null && errors.Contains(", ", StringComparison.Ordinal))
        {
            errors = "[" + errors + "]";
        }
        return new AuthorizationResult(AuthorizationDecision.NoOpinion, reasons ?? "", errors, "");
    }

    public void Dispose()
    {
        foreach (var a in _authorizers.OfType<IDisposable>())
        {
            a.Dispose();
        }
    }
}
