using Portcullis.Authentication.Oidc;
using Portcullis.Check.Readers;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Check.KubeFiles;

/// <summary>One EventRateLimit limit (<c>eventratelimit.admission.k8s.io/v1alpha1</c>).</summary>
public sealed record EventRateLimit(string Type, long Qps, long Burst, long CacheSize);

/// <summary>What an <c>AdmissionConfiguration</c> says about EventRateLimit.</summary>
/// <param name="HasEventRateLimitPlugin">The file has a <c>plugins[]</c> entry named EventRateLimit.</param>
/// <param name="Limits">The limits, when the configuration was found and parsed.</param>
/// <param name="Problems">Everything wrong, with file and line.</param>
public sealed record EventRateLimitSetup(bool HasEventRateLimitPlugin, IReadOnlyList<EventRateLimit>? Limits, IReadOnlyList<string> Problems, string? ConfigWhere);

/// <summary>What an AuthenticationConfiguration says: anonymous (null when the section is absent) and JWT issuer URLs.</summary>
public sealed record AuthenticationSummary(bool? AnonymousEnabled, IReadOnlyList<string> AnonymousPaths, IReadOnlyList<string> JwtIssuers);

/// <summary>Readers for the Kubernetes-format files kube-apiserver's flags name.</summary>
public static class KubeConfigFiles
{
    private static readonly string[] AdmissionApiVersions = ["apiserver.config.k8s.io/v1", "apiserver.k8s.io/v1alpha1"];
    private static readonly string[] ApiServerConfigVersions = ["apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1beta1", "apiserver.config.k8s.io/v1alpha1"];
    private static readonly string[] EventLimitTypes = ["Server", "Namespace", "User", "SourceAndObject"];

    private static YamlNode? LoadSingle(string text, string where, string kind, IReadOnlyList<string> apiVersions, List<string> problems)
    {
        var documents = YamlDocuments.TryLoad(text, where, out var error);
        if (documents is null)
        {
            problems.Add(error!);
            return null;
        }
        var doc = documents.FirstOrDefault(d => d.Str("kind") == kind) ?? (documents.Count > 0 ? documents[0] : null);
        if (doc is not YamlMappingNode)
        {
            problems.Add($"{where}: empty document, expected a {kind}");
            return null;
        }
        if (doc.Str("kind") != kind)
        {
            problems.Add($"{where}: line {doc.Line()}: kind is \"{doc.Str("kind")}\", expected {kind}");
            return null;
        }
        if (!apiVersions.Contains(doc.Str("apiVersion")))
        {
            problems.Add($"{where}: line {doc.Line()}: apiVersion \"{doc.Str("apiVersion")}\" is not one of {string.Join(", ", apiVersions)}");
        }
        return doc;
    }

    /// <summary>Reads an AdmissionConfiguration and the EventRateLimit configuration it points at (inline or by path).</summary>
    public static EventRateLimitSetup ReadEventRateLimit(ReferencedFile admissionFile, ReferencedFiles files)
    {
        var problems = new List<string>();
        var doc = LoadSingle(admissionFile.Text!, admissionFile.Where, "AdmissionConfiguration", AdmissionApiVersions, problems);
        if (doc is null)
        {
            return new EventRateLimitSetup(false, null, problems, null);
        }
        var plugin = doc.Seq("plugins").FirstOrDefault(p => p.Str("name") == "EventRateLimit");
        if (plugin is null)
        {
            return new EventRateLimitSetup(false, null, problems, null);
        }
        YamlNode? configuration = plugin.Get("configuration");
        var configWhere = $"{admissionFile.Where} line {plugin.Line()}";
        if (configuration is not YamlMappingNode)
        {
            var path = plugin.Str("path");
            if (string.IsNullOrEmpty(path))
            {
                problems.Add($"{configWhere}: EventRateLimit has neither path nor configuration");
                return new EventRateLimitSetup(true, null, problems, configWhere);
            }
            var configFile = files.ReadRelative(admissionFile, path);
            configWhere = configFile.Where;
            if (!configFile.WasRead)
            {
                problems.Add($"EventRateLimit configuration {path}: {configFile.Problem}");
                return new EventRateLimitSetup(true, null, problems, configWhere);
            }
            configuration = LoadSingle(configFile.Text!, configFile.Where, "Configuration", ["eventratelimit.admission.k8s.io/v1alpha1"], problems);
            if (configuration is null)
            {
                return new EventRateLimitSetup(true, null, problems, configWhere);
            }
        }
        var limits = new List<EventRateLimit>();
        var index = 0;
        foreach (var limit in configuration.Seq("limits"))
        {
            var type = limit.Str("type") ?? "";
            if (!EventLimitTypes.Contains(type))
            {
                problems.Add($"{configWhere}: limits[{index}].type \"{type}\" must be Server, Namespace, User or SourceAndObject");
            }
            var qps = ParsePositive(limit, "qps", index, configWhere, problems);
            var burst = ParsePositive(limit, "burst", index, configWhere, problems);
            _ = long.TryParse(limit.Str("cacheSize"), out var cache);
            limits.Add(new EventRateLimit(type, qps, burst, cache));
            index++;
        }
        if (limits.Count == 0)
        {
            problems.Add($"{configWhere}: limits must not be empty");
        }
        return new EventRateLimitSetup(true, limits, problems, configWhere);
    }

    private static long ParsePositive(YamlNode limit, string field, int index, string where, List<string> problems)
    {
        var text = limit.Str(field);
        if (!long.TryParse(text, out var value) || value <= 0 || value > int.MaxValue)
        {
            problems.Add($"{where}: limits[{index}].{field} \"{text}\" must be a positive integer");
            return 0;
        }
        return value;
    }

    /// <summary>
    /// The anonymous section and JWT issuers of an AuthenticationConfiguration, read and validated by Core's
    /// <see cref="AuthenticationConfigurationFile"/> (the reader <c>validate</c> and <c>serve</c> use, so the problems
    /// have their texts, with file:line). Null when the file is not one YAML document; otherwise what it says, also
    /// when it has problems, so the rest can still be scored.
    /// </summary>
    public static AuthenticationSummary? ReadAuthenticationConfiguration(ReferencedFile file, List<string> problems,
        IReadOnlyList<string>? serviceAccountIssuers = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(problems);
        var errors = new List<ConfigError>();
        var parsed = AuthenticationConfigurationFile.TryParse(file.Text!, file.Where, errors, serviceAccountIssuers);
        problems.AddRange(errors.Select(e => e.ToString()));
        if (parsed is null)
        {
            return null;
        }
        var anonymous = parsed.Anonymous;
        return new AuthenticationSummary(anonymous?.Enabled, [.. anonymous?.Conditions.Select(c => c.Path) ?? []], [.. parsed.Jwt.Select(j => j.Issuer.Url)]);
    }

    /// <summary>The authorizer types, in order, of an AuthorizationConfiguration.</summary>
    public static IReadOnlyList<string>? ReadAuthorizationConfiguration(ReferencedFile file, List<string> problems)
    {
        var doc = LoadSingle(file.Text!, file.Where, "AuthorizationConfiguration", ApiServerConfigVersions, problems);
        if (doc is null)
        {
            return null;
        }
        var types = doc.Seq("authorizers").Select(a => a.Str("type") ?? "").ToList();
        if (types.Count == 0)
        {
            problems.Add($"{file.Where}: authorizers must not be empty");
        }
        return types;
    }

    /// <summary>For each resources[] entry of an EncryptionConfiguration: the resources and the first provider's name.</summary>
    public static IReadOnlyList<(IReadOnlyList<string> Resources, string FirstProvider)>? ReadEncryptionConfiguration(ReferencedFile file, List<string> problems)
    {
        var doc = LoadSingle(file.Text!, file.Where, "EncryptionConfiguration", ["apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1alpha1"], problems);
        if (doc is null)
        {
            return null;
        }
        var result = new List<(IReadOnlyList<string>, string)>();
        foreach (var entry in doc.Seq("resources"))
        {
            var first = entry.Seq("providers").OfType<YamlMappingNode>().FirstOrDefault();
            var name = first?.Children.Keys.OfType<YamlScalarNode>().FirstOrDefault()?.Value ?? "";
            result.Add((entry.Strings("resources"), name));
        }
        if (result.Count == 0)
        {
            problems.Add($"{file.Where}: resources must not be empty");
        }
        return result;
    }
}
