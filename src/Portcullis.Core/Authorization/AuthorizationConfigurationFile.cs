using System.Text.RegularExpressions;
using Portcullis.Authentication.Oidc;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Authorization;

// The apiserver.config.k8s.io AuthorizationConfiguration (kube-apiserver --authorization-config), read and validated as
// kube-apiserver's ValidateAuthorizationConfiguration does. One reader: `portcullis sandbox --authorization-config` runs
// it, `portcullis check` scores it.

/// <summary>An <c>apiserver.config.k8s.io/{v1,v1beta1,v1alpha1}</c> <c>AuthorizationConfiguration</c> document.</summary>
public sealed partial class AuthorizationConfigurationFile
{
    public static readonly IReadOnlyList<string> ApiVersions =
        ["apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1beta1", "apiserver.config.k8s.io/v1alpha1"];

    /// <summary>The authorizer types kube-apiserver knows.</summary>
    public static readonly IReadOnlyList<string> Types = ["Webhook", "RBAC", "Node", "ABAC", "AlwaysAllow", "AlwaysDeny"];

    public string ApiVersion { get; set; } = "";
    public string Kind { get; set; } = "";
    public List<AuthorizerConfiguration> Authorizers { get; set; } = [];

    /// <summary>Line of each authorizer entry (1-based; 0 when unknown), parallel to <see cref="Authorizers"/>.</summary>
    [NotInYaml] public IReadOnlyList<int> Lines { get; private set; } = [];

    /// <summary>Reads and validates a file; every problem (file:line, field) is in the exception.</summary>
    public static AuthorizationConfigurationFile Load(string path)
    {
        var errors = new List<ConfigError>();
        var file = TryParse(File.ReadAllText(path), path, errors);
        if (file is null || errors.Count > 0)
        {
            throw new ConfigurationException(errors);
        }
        return file;
    }

    /// <summary>
    /// Reads and validates <paramref name="text"/>, adding every problem to <paramref name="errors"/>. Null when the YAML
    /// is not one document; otherwise the file as bound, also with validation errors (check scores what it can).
    /// </summary>
    public static AuthorizationConfigurationFile? TryParse(string text, string path, List<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var binder = new YamlBinder(path, errors);
        if (binder.ParseOne(text) is not { } root)
        {
            return null;
        }
        var file = binder.Bind<AuthorizationConfigurationFile>(root, "");
        var lines = new List<int>();
        if (root is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode("authorizers"), out var seq) && seq is YamlSequenceNode list)
        {
            lines.AddRange(list.Children.Select(c => (int)c.Start.Line));
        }
        file.Lines = lines;
        file.Validate(path, errors, root);
        return file;
    }

    private void Validate(string path, List<ConfigError> errors, YamlNode root)
    {
        void Fail(string field, string message) => errors.Add(new ConfigError(path, YamlBinder.LineOf(root, field), field, message));
        if (!ApiVersions.Contains(ApiVersion))
        {
            Fail("apiVersion", $"must be one of {string.Join(", ", ApiVersions)}, not \"{ApiVersion}\"");
        }
        if (Kind != "AuthorizationConfiguration")
        {
            Fail("kind", $"must be AuthorizationConfiguration, not \"{Kind}\"");
        }
        if (Authorizers.Count == 0)
        {
            Fail("authorizers", "at least one authorizer is required");
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        var seenTypes = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Authorizers.Count; i++)
        {
            var a = Authorizers[i];
            var at = $"authorizers[{i}]";
            if (!Types.Contains(a.Type))
            {
                Fail(at + ".type", a.Type.Length == 0 ? "is required" : $"\"{a.Type}\" is not one of {string.Join(", ", Types)}");
            }
            else if (a.Type != "Webhook" && !seenTypes.Add(a.Type))
            {
                Fail(at + ".type", $"{a.Type} may appear only once");
            }
            if (a.Name.Length == 0)
            {
                Fail(at + ".name", "is required");
            }
            else if (!Dns1123Subdomain().IsMatch(a.Name) || a.Name.Length > 253)
            {
                Fail(at + ".name", $"\"{a.Name}\" must be a DNS-1123 subdomain (lower case letters, digits, '-' and '.')");
            }
            else if (!names.Add(a.Name))
            {
                Fail(at + ".name", $"\"{a.Name}\" is used by an earlier authorizer");
            }
            if (a.Type == "Webhook")
            {
                if (a.Webhook is null)
                {
                    Fail(at + ".webhook", "is required when type is Webhook");
                }
                else
                {
                    ValidateWebhook(a.Webhook, at + ".webhook", Fail);
                }
            }
            else if (a.Webhook is not null && a.Type.Length > 0)
            {
                Fail(at + ".webhook", $"must not be set when type is {a.Type}");
            }
        }
    }

    private static void ValidateWebhook(WebhookConfiguration w, string at, Action<string, string> fail)
    {
        if (w.Timeout is not { } timeout)
        {
            fail(at + ".timeout", "is required (at most 30s)");
        }
        else if (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromSeconds(30))
        {
            fail(at + ".timeout", $"must be more than 0s and at most 30s, not {GoDuration.Format(timeout)}");
        }
        if (w.SubjectAccessReviewVersion is not ("v1" or "v1beta1"))
        {
            fail(at + ".subjectAccessReviewVersion", w.SubjectAccessReviewVersion.Length == 0 ? "is required (v1 or v1beta1)" : $"\"{w.SubjectAccessReviewVersion}\" is not v1 or v1beta1");
        }
        if (w.MatchConditions.Count > 0 && w.MatchConditionSubjectAccessReviewVersion.Length == 0)
        {
            fail(at + ".matchConditionSubjectAccessReviewVersion", "is required when matchConditions are set (v1)");
        }
        else if (w.MatchConditionSubjectAccessReviewVersion.Length > 0 && w.MatchConditionSubjectAccessReviewVersion != "v1")
        {
            fail(at + ".matchConditionSubjectAccessReviewVersion", $"\"{w.MatchConditionSubjectAccessReviewVersion}\" is not v1");
        }
        if (w.FailurePolicy is not ("NoOpinion" or "Deny"))
        {
            fail(at + ".failurePolicy", w.FailurePolicy.Length == 0 ? "is required (NoOpinion or Deny)" : $"\"{w.FailurePolicy}\" is not NoOpinion or Deny");
        }
        if (w.AuthorizedTTL < TimeSpan.Zero)
        {
            fail(at + ".authorizedTTL", "must not be negative");
        }
        if (w.UnauthorizedTTL < TimeSpan.Zero)
        {
            fail(at + ".unauthorizedTTL", "must not be negative");
        }
        switch (w.ConnectionInfo.Type)
        {
            case "KubeConfigFile":
                if (w.ConnectionInfo.KubeConfigFile.Length == 0)
                {
                    fail(at + ".connectionInfo.kubeConfigFile", "is required when connectionInfo.type is KubeConfigFile");
                }
                else if (!Path.IsPathRooted(w.ConnectionInfo.KubeConfigFile))
                {
                    fail(at + ".connectionInfo.kubeConfigFile", $"\"{w.ConnectionInfo.KubeConfigFile}\" must be an absolute path");
                }
                break;
            case "InClusterConfig":
                fail(at + ".connectionInfo.type", "InClusterConfig is not allowed for kube-apiserver (use KubeConfigFile)");
                break;
            case "":
                fail(at + ".connectionInfo.type", "is required (KubeConfigFile)");
                break;
            default:
                fail(at + ".connectionInfo.type", $"\"{w.ConnectionInfo.Type}\" is not KubeConfigFile or InClusterConfig");
                break;
        }
        if (w.ConditionsEndpointKubeConfigContext.Length > 0 || w.AuthorizationConditionsReviewVersion.Length > 0)
        {
            fail(at + (w.ConditionsEndpointKubeConfigContext.Length > 0 ? ".conditionsEndpointKubeConfigContext" : ".authorizationConditionsReviewVersion"),
                "conditional authorization (alpha ConditionalAuthorization) is not supported here; remove the field");
        }
        if (w.MatchConditions.Count > 64)
        {
            fail(at + ".matchConditions", $"at most 64 are allowed, found {w.MatchConditions.Count}");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var j = 0; j < w.MatchConditions.Count; j++)
        {
            var expression = w.MatchConditions[j].Expression;
            var field = $"{at}.matchConditions[{j}].expression";
            if (string.IsNullOrWhiteSpace(expression))
            {
                fail(field, "is required");
                continue;
            }
            if (!seen.Add(expression))
            {
                fail(field, "duplicates an earlier match condition");
                continue;
            }
            try
            {
                w.MatchConditions[j].Compiled = CelExpression.Compile(expression);
            }
            catch (FormatException ex)
            {
                fail(field, ex.Message);
            }
        }
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex Dns1123Subdomain();

    /// <summary>One <c>authorizers[]</c> entry.</summary>
    public sealed class AuthorizerConfiguration
    {
        public string Type { get; set; } = "";
        public string Name { get; set; } = "";
        public WebhookConfiguration? Webhook { get; set; }
    }

    /// <summary>The <c>webhook</c> stanza; defaults are kube-apiserver's.</summary>
    public sealed class WebhookConfiguration
    {
        /// <summary>Required (no default), at most 30s.</summary>
        public TimeSpan? Timeout { get; set; }
        /// <summary>0 means the default, 5m.</summary>
        public TimeSpan AuthorizedTTL { get; set; }
        /// <summary>0 means the default, 30s.</summary>
        public TimeSpan UnauthorizedTTL { get; set; }
        public bool? CacheAuthorizedRequests { get; set; }
        public bool? CacheUnauthorizedRequests { get; set; }
        public string SubjectAccessReviewVersion { get; set; } = "";
        public string MatchConditionSubjectAccessReviewVersion { get; set; } = "";
        public string FailurePolicy { get; set; } = "";
        public ConnectionInfoConfiguration ConnectionInfo { get; set; } = new();
        public List<MatchConditionConfiguration> MatchConditions { get; set; } = [];
        /// <summary>Alpha ConditionalAuthorization: read only to be refused with a clear error.</summary>
        public string ConditionsEndpointKubeConfigContext { get; set; } = "";
        public string AuthorizationConditionsReviewVersion { get; set; } = "";

        /// <summary>How long an allowed answer is reused: zero when <c>cacheAuthorizedRequests: false</c>.</summary>
        public TimeSpan EffectiveAuthorizedTtl => CacheAuthorizedRequests == false ? TimeSpan.Zero
            : AuthorizedTTL > TimeSpan.Zero ? AuthorizedTTL : TimeSpan.FromMinutes(5);

        /// <summary>How long any other answer is reused: zero when <c>cacheUnauthorizedRequests: false</c>.</summary>
        public TimeSpan EffectiveUnauthorizedTtl => CacheUnauthorizedRequests == false ? TimeSpan.Zero
            : UnauthorizedTTL > TimeSpan.Zero ? UnauthorizedTTL : TimeSpan.FromSeconds(30);
    }

    public sealed class ConnectionInfoConfiguration
    {
        public string Type { get; set; } = "";
        public string KubeConfigFile { get; set; } = "";
    }

    public sealed class MatchConditionConfiguration
    {
        public string Expression { get; set; } = "";
        /// <summary>Compiled at load.</summary>
        [NotInYaml] public CelExpression? Compiled { get; set; }
    }
}
