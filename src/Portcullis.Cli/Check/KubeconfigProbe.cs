using System.Security.Cryptography.X509Certificates;
using k8s;
using k8s.Models;
using Portcullis.Check;
using Portcullis.Check.Probe;

namespace Portcullis.Cli.Check;

/// <summary>
/// The authenticated half of <c>probe</c>: with the kubeconfig's credentials, one GET that shows the APF response
/// headers, a SelfSubjectReview (who am I) and a SelfSubjectRulesReview (<c>kubectl auth can-i --list</c>). Reviews
/// are evaluated and returned, never stored.
/// </summary>
internal sealed class KubeconfigProbe(string kubeconfig, string? context, string? ns, X509Certificate2Collection? ca) : IAuthenticatedProbe
{
    private static readonly RuleInfoLike Apf = new("PC-P5-APF", "API Priority and Fairness classifies requests", CheckLayer.Admission,
        "keep --enable-priority-and-fairness (the default); make sure proxies in front pass the X-Kubernetes-PF-* headers through");
    private static readonly RuleInfoLike Identity = new("PC-P3-IDENTITY", "The kubeconfig's identity", CheckLayer.Authentication, "");
    private static readonly RuleInfoLike Rights = new("PC-P4-RIGHTS", "What this identity may do (auth can-i --list)", CheckLayer.Authorization,
        "bind narrower Roles; keep cluster-admin for break-glass identities");

    private sealed record RuleInfoLike(string Id, string Title, CheckLayer Layer, string Remediation)
    {
        public Finding Make(CheckStatus status, string evidence) =>
            new(Id, Title, Layer, status, evidence, status is CheckStatus.Pass or CheckStatus.Info ? "" : Remediation);
    }

    public async Task<IReadOnlyList<Finding>> RunAsync(Uri endpoint, CancellationToken cancellationToken)
    {
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig, currentContext: context);
        config.Host = endpoint.ToString().TrimEnd('/');
        if (ca is { Count: > 0 })
        {
            config.SslCaCerts = ca;
        }
        using var client = new Kubernetes(config);
        var findings = new List<Finding>();

        try
        {
            using var response = await client.Version.GetCodeWithHttpMessagesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            var headers = response.Response.Headers;
            var fs = headers.TryGetValues("X-Kubernetes-PF-FlowSchema-UID", out var a) ? a.FirstOrDefault() : null;
            var pl = headers.TryGetValues("X-Kubernetes-PF-PriorityLevel-UID", out var b) ? b.FirstOrDefault() : null;
            findings.Add(fs is not null && pl is not null
                ? Apf.Make(CheckStatus.Pass, $"GET /version as the kubeconfig user: X-Kubernetes-PF-FlowSchema-UID={fs}, X-Kubernetes-PF-PriorityLevel-UID={pl}")
                : Apf.Make(CheckStatus.Warn, $"GET /version as the kubeconfig user: {(int)response.Response.StatusCode}, no X-Kubernetes-PF-* headers (APF disabled, or a proxy strips them)"));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            findings.Add(Apf.Make(CheckStatus.Warn, $"GET /version as the kubeconfig user failed, APF headers not seen: {Short(ex)}"));
        }

        try
        {
            var review = await client.AuthenticationV1.CreateSelfSubjectReviewAsync(new V1SelfSubjectReview(), cancellationToken: cancellationToken).ConfigureAwait(false);
            var user = review.Status?.UserInfo;
            findings.Add(Identity.Make(CheckStatus.Info, $"authenticated as {user?.Username ?? "(unknown)"}, groups [{string.Join(", ", user?.Groups ?? [])}]"));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            findings.Add(Identity.Make(CheckStatus.Info, $"SelfSubjectReview not available: {Short(ex)}"));
        }

        try
        {
            var rules = await client.AuthorizationV1.CreateSelfSubjectRulesReviewAsync(
                new V1SelfSubjectRulesReview { Spec = new V1SelfSubjectRulesReviewSpec { NamespaceProperty = ns ?? "default" } },
                cancellationToken: cancellationToken).ConfigureAwait(false);
            var resourceRules = rules.Status?.ResourceRules ?? [];
            var lines = resourceRules.Select(r => $"{string.Join(",", r.Verbs)} {string.Join(",", (r.ApiGroups ?? []).Select(g => g.Length == 0 ? "core" : g))}/{string.Join(",", r.Resources ?? [])}").ToList();
            var everything = resourceRules.Any(r => r.Verbs.Contains("*") && (r.Resources ?? []).Contains("*") && (r.ApiGroups ?? []).Contains("*"));
            var text = $"in namespace {ns ?? "default"}: {(lines.Count == 0 ? "no resource rules" : string.Join("; ", lines.Take(20)))}{(lines.Count > 20 ? $"; … {lines.Count - 20} more" : "")}{(rules.Status?.Incomplete == true ? " (incomplete: a webhook authorizer may grant more)" : "")}";
            findings.Add(everything ? Rights.Make(CheckStatus.Warn, "this identity can do everything (cluster-admin): " + text) : Rights.Make(CheckStatus.Info, text));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            findings.Add(Rights.Make(CheckStatus.Info, $"SelfSubjectRulesReview failed: {Short(ex)}"));
        }
        return findings;
    }

    // Response bodies can be long; the first line says enough.
    private static string Short(Exception ex)
    {
        var message = ex.Message;
        var cut = message.IndexOf(", response body", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message.Length > 300 ? message[..300] + "…" : message;
    }
}
