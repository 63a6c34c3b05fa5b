using Portcullis.Audit;
using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Check.KubeFiles;
using Portcullis.Configuration;
using R = Portcullis.Check.Rules.RuleCatalog;

namespace Portcullis.Check.Rules;

/// <summary>Scores the Kubernetes-format files both kube-apiserver and the gateway read; a bad file is a finding, never an exception.</summary>
internal static class FileScoring
{
    private static readonly string[] HealthPaths = ["/healthz", "/livez", "/readyz"];

    /// <summary>3.2.2 and the PC-L6-AUDIT-* rules for the policy named by <paramref name="flagEvidence"/>.</summary>
    public static void ScoreAuditPolicy(FindingList findings, ReferencedFile file, string flagEvidence)
    {
        if (!file.WasRead)
        {
            findings.Warn(R.AuditPolicyParses, $"{flagEvidence}: {file.Problem}; the policy's contents were not checked", file.Named);
            return;
        }
        // The gateway's own loader and model (Portcullis.Audit): check scores a policy exactly as serve enforces it.
        var errors = new List<ConfigError>();
        AuditPolicy? policy;
        try
        {
            policy = AuditPolicyLoader.TryParse(file.Text!, file.Where, errors);
        }
        catch (Exception ex)
        {
            // The loader reports problems as errors; anything it still throws is reported against the file.
            findings.Fail(R.AuditPolicyParses, $"{file.Where}: cannot be parsed: {ex.Message}", file.Named);
            return;
        }
        if (policy is null || errors.Count > 0)
        {
            // kube-apiserver (and the gateway) refuse to start with such a policy: there is nothing to score.
            findings.Fail(R.AuditPolicyParses, string.Join("; ", errors), file.Named);
            return;
        }
        ScoreLoadedAuditPolicy(findings, policy, file.Where, file.Named);
    }

    /// <summary>3.2.2 and the PC-L6-AUDIT-* rules for a policy already loaded (the gateway's, from its configuration pipeline).</summary>
    public static void ScoreLoadedAuditPolicy(FindingList findings, AuditPolicy policy, string where, string evidence)
    {
        findings.Pass(R.AuditPolicyParses, $"{where}: audit.k8s.io/v1 Policy with {policy.Rules.Count} rule(s)", evidence);
        ScorePolicy(findings, policy, evidence);
    }

    private static readonly string[] User = ["system:authenticated"];
    private static readonly string[] ServiceAccount = ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"];

    /// <summary>A request the scoring asks the policy about: the authenticated user and the request's attributes.</summary>
    private sealed record Sample(UserInfo User, RequestInfo Request)
    {
        public static Sample Resource(string user, string[] groups, string verb, string group, string resource, string subresource, string ns, string name) =>
            new(UserInfo.Create(user, groups), new RequestInfo
            {
                IsResourceRequest = true, Verb = verb, ApiGroup = group, Resource = resource, Subresource = subresource, Namespace = ns, Name = name,
            });

        public static Sample NonResource(string user, string[] groups, string verb, string path) =>
            new(UserInfo.Create(user, groups), new RequestInfo { Verb = verb, Path = path });

        public override string ToString() => Request.IsResourceRequest
            ? $"{Request.Verb} {(Request.ApiGroup.Length == 0 ? "" : Request.ApiGroup + "/")}{Request.Resource}{(Request.Subresource.Length == 0 ? "" : "/" + Request.Subresource)}"
            : $"{Request.Verb} {Request.Path}";
    }

    private static IEnumerable<Sample> For(string group, string resource, string subresource, params string[] verbs)
    {
        foreach (var verb in verbs)
        {
            yield return Sample.Resource("alice", User, verb, group, resource, subresource, "default", "example");
            yield return Sample.Resource("system:serviceaccount:default:app", ServiceAccount, verb, group, resource, subresource, "kube-system", "example");
        }
    }

    private static AuditPolicyDecision Evaluate(AuditPolicy policy, Sample sample) => policy.Evaluate(sample.User, sample.Request);

    private static string Describe(AuditPolicy policy, Sample request, AuditPolicyDecision result) =>
        result.RuleIndex < 0
            ? $"{request} by {request.User.Name}: no rule matches, level None"
            : $"{request} by {request.User.Name}: rule {result.RuleIndex + 1} (line {policy.Rules[result.RuleIndex].Line}) level {result.Level.Name()}";

    /// <summary>Scores one concern: the worst request decides; bodies leak (fail or warn), None hides.</summary>
    private static CheckStatus Concern(FindingList findings, RuleInfo rule, AuditPolicy policy, string location,
        IEnumerable<Sample> requests, CheckStatus whenBodyLogged, CheckStatus whenNone, bool bodiesOk = false)
    {
        var worst = CheckStatus.Pass;
        string evidence = "";
        foreach (var request in requests)
        {
            var result = Evaluate(policy, request);
            var status = result.Level switch
            {
                AuditLevel.None => whenNone,
                AuditLevel.Request or AuditLevel.RequestResponse when !bodiesOk => whenBodyLogged,
                _ => CheckStatus.Pass,
            };
            if (status > worst || evidence.Length == 0)
            {
                if (status >= worst)
                {
                    worst = status;
                    evidence = Describe(policy, request, result);
                }
            }
        }
        var text = worst switch
        {
            CheckStatus.Pass => evidence,
            _ when evidence.Contains("level None", StringComparison.Ordinal) => evidence + " — not recorded at all",
            _ => evidence + " — request/response bodies would be written to the audit log",
        };
        findings.Add(rule, worst, text, location);
        return worst;
    }

    private static void ScorePolicy(FindingList findings, AuditPolicy policy, string location)
    {
        var statuses = new List<(string Id, CheckStatus Status)>
        {
            (R.AuditSecrets.Id, Concern(findings, R.AuditSecrets, policy, location, For("", "secrets", "", "get", "list", "watch", "create", "update", "patch", "delete"), CheckStatus.Fail, CheckStatus.Warn)),
            (R.AuditConfigMaps.Id, Concern(findings, R.AuditConfigMaps, policy, location, For("", "configmaps", "", "get", "list", "create", "update"), CheckStatus.Warn, CheckStatus.Warn)),
            (R.AuditTokenReviews.Id, Concern(findings, R.AuditTokenReviews, policy, location, For("authentication.k8s.io", "tokenreviews", "", "create"), CheckStatus.Fail, CheckStatus.Warn)),
            (R.AuditExec.Id, Concern(findings, R.AuditExec, policy, location,
                For("", "pods", "exec", "create", "get").Concat(For("", "pods", "attach", "create")).Concat(For("", "pods", "portforward", "create"))
                    .Concat(For("", "pods", "proxy", "get")).Concat(For("", "services", "proxy", "get")), CheckStatus.Pass, CheckStatus.Warn, bodiesOk: true)),
            (R.AuditWorkloads.Id, Concern(findings, R.AuditWorkloads, policy, location,
                For("", "pods", "", "create", "update", "patch", "delete").Concat(For("apps", "deployments", "", "create", "update", "patch", "delete")),
                CheckStatus.Pass, CheckStatus.Warn, bodiesOk: true)),
            (R.AuditRbac.Id, Concern(findings, R.AuditRbac, policy, location,
                For("rbac.authorization.k8s.io", "clusterrolebindings", "", "create", "update", "delete").Concat(For("rbac.authorization.k8s.io", "rolebindings", "", "create", "update", "delete")),
                CheckStatus.Pass, CheckStatus.Warn, bodiesOk: true)),
        };

        // Does anything at all get recorded? Probe a spread of ordinary requests.
        var spread = For("", "pods", "", "get", "list", "create", "delete")
            .Concat(For("apps", "deployments", "", "create"))
            .Concat(For("", "secrets", "", "get"))
            .Concat(For("rbac.authorization.k8s.io", "clusterroles", "", "create"))
            .Append(Sample.NonResource("alice", User, "get", "/api"))
            .Append(Sample.NonResource("alice", User, "get", "/version"));
        var recorded = spread.Count(r => Evaluate(policy, r).Level != AuditLevel.None);
        if (recorded == 0)
        {
            findings.Fail(R.AuditNotAllNone, $"every probed request (pods, deployments, secrets, clusterroles, /api, /version) resolves to level None across {policy.Rules.Count} rule(s)", location);
            statuses.Add((R.AuditNotAllNone.Id, CheckStatus.Fail));
        }
        else
        {
            findings.Pass(R.AuditNotAllNone, $"{recorded} of {spread.Count()} probed requests are recorded", location);
        }

        var worst = statuses.Max(s => s.Status);
        var missing = statuses.Where(s => s.Status != CheckStatus.Pass).Select(s => $"{s.Id} {s.Status.ToString().ToUpperInvariant()}").ToList();
        findings.Add(R.AuditPolicyCoverage, worst, missing.Count == 0
            ? "secrets, configmaps and tokenreviews at Metadata; workload changes, exec/attach/portforward/proxy and RBAC changes recorded"
            : "not covered as CIS 3.2.2 asks: " + string.Join(", ", missing), location);
    }

    /// <summary>PC-L5-EVENTRATELIMIT-CONFIG for an AdmissionConfiguration file.</summary>
    public static void ScoreAdmissionConfig(FindingList findings, ReferencedFile file, ReferencedFiles files, string flagEvidence, bool pluginEnabled)
    {
        if (!file.WasRead)
        {
            findings.Warn(R.EventRateLimitConfig, $"{flagEvidence}: {file.Problem}; EventRateLimit limits were not checked", file.Named);
            return;
        }
        EventRateLimitSetup setup;
        try
        {
            setup = KubeConfigFiles.ReadEventRateLimit(file, files);
        }
        catch (Exception ex)
        {
            findings.Fail(R.EventRateLimitConfig, $"{file.Where}: cannot be parsed: {ex.Message}", file.Named);
            return;
        }
        var fatal = setup.Problems.Where(p => !p.StartsWith("EventRateLimit configuration ", StringComparison.Ordinal)).ToList();
        if (!setup.HasEventRateLimitPlugin)
        {
            var why = fatal.Count > 0 ? string.Join("; ", fatal) : $"{file.Where}: plugins[] has no EventRateLimit entry";
            findings.Add(R.EventRateLimitConfig, pluginEnabled || fatal.Count > 0 ? CheckStatus.Fail : CheckStatus.Warn, why, file.Named);
            return;
        }
        if (fatal.Count > 0)
        {
            findings.Fail(R.EventRateLimitConfig, string.Join("; ", fatal), file.Named);
            return;
        }
        if (setup.Limits is null)
        {
            // The AdmissionConfiguration is right; the limits file it points at is not on this machine.
            findings.Pass(R.EventRateLimitConfig, $"{file.Where}: EventRateLimit configured ({string.Join("; ", setup.Problems)}; limits not checked)", file.Named);
            return;
        }
        var limits = string.Join(", ", setup.Limits.Select(l => $"{l.Type} qps={l.Qps} burst={l.Burst}"));
        findings.Pass(R.EventRateLimitConfig, $"{setup.ConfigWhere}: {limits}", file.Named);
    }

    /// <summary>The anonymous section of an AuthenticationConfiguration, judged as 1.2.1.</summary>
    public static void ScoreAnonymousConditions(FindingList findings, bool enabled, IReadOnlyList<string> paths, string evidence, string? location)
    {
        if (!enabled)
        {
            findings.Pass(R.AnonymousAuth, $"{evidence}: anonymous disabled", location);
        }
        else if (paths.Count == 0)
        {
            findings.Fail(R.AnonymousAuth, $"{evidence}: anonymous enabled for every path", location);
        }
        else if (paths.All(HealthPaths.Contains))
        {
            findings.Pass(R.AnonymousAuth, $"{evidence}: anonymous only for {string.Join(", ", paths)}", location);
        }
        else
        {
            findings.Warn(R.AnonymousAuth, $"{evidence}: anonymous allowed for {string.Join(", ", paths)} (beyond the health endpoints)", location);
        }
    }
}
