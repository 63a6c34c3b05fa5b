using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Authentication.Oidc;

// The apiserver.config.k8s.io AuthenticationConfiguration (kube-apiserver --authentication-config), read as
// kube-apiserver reads it. Named *File to keep it apart from Portcullis.Configuration.AuthenticationConfiguration
// (the gateway's own authentication section).

/// <summary>An <c>apiserver.config.k8s.io/{v1,v1beta1,v1alpha1}</c> <c>AuthenticationConfiguration</c> document.</summary>
public sealed class AuthenticationConfigurationFile
{
    public static readonly IReadOnlyList<string> ApiVersions =
        ["apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1beta1", "apiserver.config.k8s.io/v1alpha1"];

    public string ApiVersion { get; set; } = "";
    public string Kind { get; set; } = "";
    public List<JwtAuthenticatorConfig> Jwt { get; set; } = [];
    public AnonymousAuthConfig? Anonymous { get; set; }

    /// <summary>The compiled authenticators (set by <see cref="Load"/>).</summary>
    [NotInYaml] public IReadOnlyList<JwtAuthenticatorSpec> Authenticators { get; private set; } = [];

    /// <summary>Reads and validates a file; every problem (with file, line where known, and field) is in the exception.</summary>
    public static AuthenticationConfigurationFile Load(string path, IReadOnlyList<string>? serviceAccountIssuers = null) =>
        Parse(File.ReadAllText(path), path, serviceAccountIssuers);

    public static AuthenticationConfigurationFile Parse(string text, string path, IReadOnlyList<string>? serviceAccountIssuers = null)
    {
        var errors = new List<ConfigError>();
        var file = TryParse(text, path, errors, serviceAccountIssuers);
        if (file is null || errors.Count > 0)
        {
            throw new ConfigurationException(errors);
        }
        return file;
    }

    /// <summary>
    /// Reads and validates <paramref name="text"/>, adding every problem to <paramref name="errors"/> (the texts
    /// <see cref="Load"/> reports). Returns null when the YAML cannot be read as one document, otherwise the file as
    /// bound, also when it has validation errors (for <c>portcullis check</c>, which scores what it can of a bad file).
    /// </summary>
    public static AuthenticationConfigurationFile? TryParse(string text, string path, List<ConfigError> errors, IReadOnlyList<string>? serviceAccountIssuers = null)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var binder = new YamlBinder(path, errors);
        if (binder.ParseOne(text) is not { } root)
        {
            return null;
        }
        var file = binder.Bind<AuthenticationConfigurationFile>(root, "");
        new Validator(file, path, errors, serviceAccountIssuers ?? [], root).Run();
        return file;
    }

    private sealed class Validator(AuthenticationConfigurationFile file, string path, List<ConfigError> errors,
        IReadOnlyList<string> saIssuers, YamlNode root)
    {
        private static readonly Regex ExtraKey = new("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[-a-z0-9._~!$&'()*+,;=:@%/]*$", RegexOptions.CultureInvariant);

        private void Fail(string field, string message) => errors.Add(new ConfigError(path, LineOf(field), field, message));

        private int LineOf(string field) => YamlBinder.LineOf(root, field);

        public void Run()
        {
            if (!ApiVersions.Contains(file.ApiVersion))
            {
                Fail("apiVersion", $"must be one of {string.Join(", ", ApiVersions)}, not \"{file.ApiVersion}\"");
            }
            if (file.Kind != "AuthenticationConfiguration")
            {
                Fail("kind", $"must be AuthenticationConfiguration, not \"{file.Kind}\"");
            }
            if (file.Jwt.Count > 64)
            {
                Fail("jwt", $"at most 64 authenticators are allowed, found {file.Jwt.Count}");
            }
            var urls = new HashSet<string>(StringComparer.Ordinal);
            var discoveryUrls = new HashSet<string>(StringComparer.Ordinal);
            var specs = new List<JwtAuthenticatorSpec>();
            for (var i = 0; i < file.Jwt.Count; i++)
            {
                var spec = ValidateJwt(file.Jwt[i], $"jwt[{i}]", urls, discoveryUrls);
                if (spec is not null)
                {
                    specs.Add(spec);
                }
            }
            if (file.Anonymous is { } anonymous)
            {
                if (!anonymous.Enabled && anonymous.Conditions.Count > 0)
                {
                    Fail("anonymous.conditions", "conditions are only allowed when anonymous.enabled is true");
                }
                for (var i = 0; i < anonymous.Conditions.Count; i++)
                {
                    if (!anonymous.Conditions[i].Path.StartsWith('/'))
                    {
                        Fail($"anonymous.conditions[{i}].path", $"\"{anonymous.Conditions[i].Path}\" must start with /");
                    }
                }
            }
            file.Authenticators = specs;
        }

        private JwtAuthenticatorSpec? ValidateJwt(JwtAuthenticatorConfig jwt, string at, HashSet<string> urls, HashSet<string> discoveryUrls)
        {
            var before = errors.Count;
            var issuer = jwt.Issuer;
            if (!Uri.TryCreate(issuer.Url, UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttps)
            {
                Fail($"{at}.issuer.url", $"\"{issuer.Url}\" must be an https:// URL");
            }
            else if (!urls.Add(issuer.Url))
            {
                Fail($"{at}.issuer.url", $"duplicate issuer URL \"{issuer.Url}\"");
            }
            if (saIssuers.Contains(issuer.Url))
            {
                Fail($"{at}.issuer.url", $"\"{issuer.Url}\" conflicts with a service-account issuer");
            }
            if (issuer.DiscoveryURL.Length > 0)
            {
                if (!Uri.TryCreate(issuer.DiscoveryURL, UriKind.Absolute, out var d) || d.Scheme != Uri.UriSchemeHttps)
                {
                    Fail($"{at}.issuer.discoveryURL", $"\"{issuer.DiscoveryURL}\" must be an https:// URL");
                }
                else if (issuer.DiscoveryURL == issuer.Url)
                {
                    Fail($"{at}.issuer.discoveryURL", "must be different from issuer.url");
                }
                else if (!discoveryUrls.Add(issuer.DiscoveryURL))
                {
                    Fail($"{at}.issuer.discoveryURL", $"duplicate discovery URL \"{issuer.DiscoveryURL}\"");
                }
            }
            if (issuer.CertificateAuthority.Length > 0)
            {
                var bundle = new X509Certificate2Collection();
                try
                {
                    bundle.ImportFromPem(issuer.CertificateAuthority);
                }
                catch (System.Security.Cryptography.CryptographicException)
                {
                    bundle.Clear();
                }
                if (bundle.Count == 0)
                {
                    Fail($"{at}.issuer.certificateAuthority", "must hold PEM-encoded CA certificates");
                }
            }
            if (issuer.Audiences.Count == 0)
            {
                Fail($"{at}.issuer.audiences", "at least one audience is required");
            }
            if (issuer.Audiences.Distinct(StringComparer.Ordinal).Count() != issuer.Audiences.Count)
            {
                Fail($"{at}.issuer.audiences", "duplicate audience");
            }
            if (issuer.Audiences.Any(a => a.Length == 0))
            {
                Fail($"{at}.issuer.audiences", "an audience must not be empty");
            }
            if (issuer.Audiences.Count > 1 && issuer.AudienceMatchPolicy != "MatchAny")
            {
                Fail($"{at}.issuer.audienceMatchPolicy", "must be MatchAny when more than one audience is given");
            }
            else if (issuer.AudienceMatchPolicy.Length > 0 && issuer.AudienceMatchPolicy != "MatchAny")
            {
                Fail($"{at}.issuer.audienceMatchPolicy", $"must be MatchAny, not \"{issuer.AudienceMatchPolicy}\"");
            }
            if (issuer.EgressSelectorType is not ("" or "controlplane" or "cluster"))
            {
                Fail($"{at}.issuer.egressSelectorType", $"must be controlplane or cluster, not \"{issuer.EgressSelectorType}\"");
            }

            var claimRules = new List<ClaimValidationRuleSpec>();
            for (var i = 0; i < jwt.ClaimValidationRules.Count; i++)
            {
                var rule = jwt.ClaimValidationRules[i];
                var f = $"{at}.claimValidationRules[{i}]";
                if (rule.Claim.Length > 0 == rule.Expression.Length > 0)
                {
                    Fail(f, "exactly one of claim or expression must be set");
                    continue;
                }
                if (rule.Claim.Length > 0)
                {
                    if (rule.Message.Length > 0)
                    {
                        Fail(f + ".message", "message may only be set with expression");
                    }
                    claimRules.Add(new ClaimValidationRuleSpec(rule.Claim, rule.RequiredValue, null, ""));
                }
                else
                {
                    if (rule.RequiredValue.Length > 0)
                    {
                        Fail(f + ".requiredValue", "requiredValue may only be set with claim");
                    }
                    if (Compile(rule.Expression, f + ".expression") is { } e)
                    {
                        claimRules.Add(new ClaimValidationRuleSpec("", "", e, rule.Message));
                    }
                }
            }

            var m = jwt.ClaimMappings;
            var username = Mapping(m.Username, $"{at}.claimMappings.username", prefixRequired: true, required: true);
            var groups = m.Groups is null ? null : Mapping(m.Groups, $"{at}.claimMappings.groups", prefixRequired: true, required: false);
            ClaimOrExpression? uid = null;
            if (m.Uid is { } u)
            {
                var f = $"{at}.claimMappings.uid";
                if (u.Claim.Length > 0 && u.Expression.Length > 0)
                {
                    Fail(f, "claim and expression are mutually exclusive");
                }
                else if (u.Claim.Length > 0)
                {
                    uid = new ClaimOrExpression(u.Claim, "", null);
                }
                else if (u.Expression.Length > 0 && Compile(u.Expression, f + ".expression") is { } e)
                {
                    uid = new ClaimOrExpression("", "", e);
                }
            }
            var extras = new List<ExtraMappingSpec>();
            var keys = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < m.Extra.Count; i++)
            {
                var x = m.Extra[i];
                var f = $"{at}.claimMappings.extra[{i}]";
                if (x.Key.Length == 0)
                {
                    Fail(f + ".key", "is required");
                }
                else if (x.Key.Any(char.IsUpper) || !ExtraKey.IsMatch(x.Key))
                {
                    Fail(f + ".key", $"\"{x.Key}\" must be a lowercase domain-prefixed path such as example.org/foo");
                }
                else if (IsReserved(x.Key))
                {
                    Fail(f + ".key", $"\"{x.Key}\": k8s.io, kubernetes.io and their subdomains are reserved");
                }
                else if (!keys.Add(x.Key))
                {
                    Fail(f + ".key", $"duplicate key \"{x.Key}\"");
                }
                if (x.ValueExpression.Length == 0)
                {
                    Fail(f + ".valueExpression", "is required");
                }
                else if (Compile(x.ValueExpression, f + ".valueExpression") is { } e)
                {
                    extras.Add(new ExtraMappingSpec(x.Key, e));
                }
            }
            var userRules = new List<UserValidationRuleSpec>();
            for (var i = 0; i < jwt.UserValidationRules.Count; i++)
            {
                var r = jwt.UserValidationRules[i];
                if (r.Expression.Length == 0)
                {
                    Fail($"{at}.userValidationRules[{i}].expression", "is required");
                }
                else if (Compile(r.Expression, $"{at}.userValidationRules[{i}].expression") is { } e)
                {
                    userRules.Add(new UserValidationRuleSpec(e, r.Message));
                }
            }
            if (m.Username.Expression.Contains("claims.email", StringComparison.Ordinal) && !ReferencesEmailVerified(jwt))
            {
                Fail($"{at}.claimMappings.username.expression",
                    "claims.email_verified must be used in claimMappings.username.expression, claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when claims.email is used in the username expression");
            }
            if (errors.Count > before || username is null)
            {
                return null;
            }
            return new JwtAuthenticatorSpec
            {
                IssuerUrl = issuer.Url,
                DiscoveryUrl = issuer.DiscoveryURL.Length > 0 ? issuer.DiscoveryURL : null,
                CertificateAuthorityPem = issuer.CertificateAuthority.Length > 0 ? issuer.CertificateAuthority : null,
                Audiences = issuer.Audiences,
                ClaimValidationRules = claimRules,
                Username = username,
                Groups = groups,
                Uid = uid,
                Extra = extras,
                UserValidationRules = userRules,
            };
        }

        private static bool ReferencesEmailVerified(JwtAuthenticatorConfig jwt) =>
            jwt.ClaimMappings.Username.Expression.Contains("email_verified", StringComparison.Ordinal)
            || jwt.ClaimMappings.Extra.Any(x => x.ValueExpression.Contains("email_verified", StringComparison.Ordinal))
            || jwt.ClaimValidationRules.Any(r => r.Expression.Contains("email_verified", StringComparison.Ordinal));

        private static bool IsReserved(string key)
        {
            var domain = key[..key.IndexOf('/', StringComparison.Ordinal)];
            return domain is "k8s.io" or "kubernetes.io" || domain.EndsWith(".k8s.io", StringComparison.Ordinal) || domain.EndsWith(".kubernetes.io", StringComparison.Ordinal);
        }

        private ClaimOrExpression? Mapping(PrefixedClaimOrExpression mapping, string f, bool prefixRequired, bool required)
        {
            if (mapping.Claim.Length > 0 && mapping.Expression.Length > 0)
            {
                Fail(f, "claim and expression are mutually exclusive");
                return null;
            }
            if (mapping.Claim.Length > 0)
            {
                if (prefixRequired && mapping.Prefix is null)
                {
                    Fail(f + ".prefix", "is required when claim is set; set it to \"\" for no prefix");
                    return null;
                }
                return new ClaimOrExpression(mapping.Claim, mapping.Prefix ?? "", null);
            }
            if (mapping.Expression.Length > 0)
            {
                if (!string.IsNullOrEmpty(mapping.Prefix))
                {
                    Fail(f + ".prefix", "may not be set with expression");
                    return null;
                }
                return Compile(mapping.Expression, f + ".expression") is { } e ? new ClaimOrExpression("", "", e) : null;
            }
            if (required)
            {
                Fail(f, "claim or expression is required");
            }
            return null;
        }

        private CelExpression? Compile(string expression, string f)
        {
            try
            {
                return CelExpression.Compile(expression);
            }
            catch (FormatException ex)
            {
                Fail(f, ex.Message);
                return null;
            }
        }
    }
}

public sealed class JwtAuthenticatorConfig
{
    public IssuerConfig Issuer { get; set; } = new();
    public List<ClaimValidationRuleConfig> ClaimValidationRules { get; set; } = [];
    public ClaimMappingsConfig ClaimMappings { get; set; } = new();
    public List<UserValidationRuleConfig> UserValidationRules { get; set; } = [];
}

public sealed class IssuerConfig
{
    public string Url { get; set; } = "";
    public string DiscoveryURL { get; set; } = "";
    public string CertificateAuthority { get; set; } = "";
    public List<string> Audiences { get; set; } = [];
    public string AudienceMatchPolicy { get; set; } = "";
    public string EgressSelectorType { get; set; } = "";
}

public sealed class ClaimValidationRuleConfig
{
    public string Claim { get; set; } = "";
    public string RequiredValue { get; set; } = "";
    public string Expression { get; set; } = "";
    public string Message { get; set; } = "";
}

public sealed class ClaimMappingsConfig
{
    public PrefixedClaimOrExpression Username { get; set; } = new();
    public PrefixedClaimOrExpression? Groups { get; set; }
    public ClaimOrExpressionConfig? Uid { get; set; }
    public List<ExtraMappingConfig> Extra { get; set; } = [];
}

public sealed class PrefixedClaimOrExpression
{
    public string Claim { get; set; } = "";
    /// <summary>Null when absent: required (possibly "") when <see cref="Claim"/> is set.</summary>
    public string? Prefix { get; set; }
    public string Expression { get; set; } = "";
}

public sealed class ClaimOrExpressionConfig
{
    public string Claim { get; set; } = "";
    public string Expression { get; set; } = "";
}

public sealed class ExtraMappingConfig
{
    public string Key { get; set; } = "";
    public string ValueExpression { get; set; } = "";
}

public sealed class UserValidationRuleConfig
{
    public string Expression { get; set; } = "";
    public string Message { get; set; } = "";
}

public sealed class AnonymousAuthConfig
{
    public bool Enabled { get; set; }
    public List<AnonymousConditionConfig> Conditions { get; set; } = [];
}

public sealed class AnonymousConditionConfig
{
    public string Path { get; set; } = "";
}

/// <summary>One JWT authenticator, validated and compiled: from an AuthenticationConfiguration entry or from the --oidc-* flags.</summary>
public sealed class JwtAuthenticatorSpec
{
    public required string IssuerUrl { get; init; }
    public string? DiscoveryUrl { get; init; }
    public string? CertificateAuthorityPem { get; init; }
    public required IReadOnlyList<string> Audiences { get; init; }
    /// <summary>Accepted <c>alg</c> values (flags: <c>--oidc-signing-algs</c>; structured config: every asymmetric one).</summary>
    public IReadOnlyList<string> SigningAlgorithms { get; init; } = Tokens.JwtToken.AsymmetricAlgorithms;
    public IReadOnlyList<ClaimValidationRuleSpec> ClaimValidationRules { get; init; } = [];
    public required ClaimOrExpression Username { get; init; }
    public ClaimOrExpression? Groups { get; init; }
    public ClaimOrExpression? Uid { get; init; }
    public IReadOnlyList<ExtraMappingSpec> Extra { get; init; } = [];
    public IReadOnlyList<UserValidationRuleSpec> UserValidationRules { get; init; } = [];
    /// <summary>Flags mode: required claims compared as in <c>--oidc-required-claim</c>.</summary>
    public bool FlagsMode { get; init; }

    /// <summary>The --oidc-* flags as one JWT authenticator, with kube-apiserver's username-prefix default rule.</summary>
    public static JwtAuthenticatorSpec FromFlags(Configuration.OidcConfiguration oidc, string? caBundlePem)
    {
        var prefix = oidc.UsernamePrefix switch
        {
            null when oidc.UsernameClaim == "email" => "",
            null => oidc.IssuerURL + "#",
            "-" => "",
            var p => p,
        };
        return new JwtAuthenticatorSpec
        {
            IssuerUrl = oidc.IssuerURL,
            CertificateAuthorityPem = caBundlePem,
            Audiences = [oidc.ClientID],
            SigningAlgorithms = oidc.SigningAlgs.Count == 0 ? ["RS256"] : oidc.SigningAlgs,
            ClaimValidationRules = [.. oidc.RequiredClaims.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => new ClaimValidationRuleSpec(c.Key, c.Value, null, ""))],
            Username = new ClaimOrExpression(oidc.UsernameClaim.Length == 0 ? "sub" : oidc.UsernameClaim, prefix, null),
            Groups = oidc.GroupsClaim.Length == 0 ? null : new ClaimOrExpression(oidc.GroupsClaim, oidc.GroupsPrefix, null),
            FlagsMode = true,
        };
    }
}

public sealed record ClaimOrExpression(string Claim, string Prefix, CelExpression? Expression);
public sealed record ClaimValidationRuleSpec(string Claim, string RequiredValue, CelExpression? Expression, string Message);
public sealed record ExtraMappingSpec(string Key, CelExpression ValueExpression);
public sealed record UserValidationRuleSpec(CelExpression Expression, string Message);
