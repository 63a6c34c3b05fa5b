using System.Text;
using System.Text.Json;
using Portcullis.Authorization.DenyLists;
using Portcullis.Authorization.NetworkScopes;
using Portcullis.Authorization.Rbac;

namespace Portcullis.Authorization.Explain;

/// <summary>What one layer of the chain said.</summary>
/// <param name="Authorizer">The layer or mode.</param>
/// <param name="Decision">Its decision.</param>
/// <param name="Reason">Its reason.</param>
/// <param name="Error">Its error, if any.</param>
/// <param name="Detail">For humans: the deny-list entry, the network scope, or binding → role → rule.</param>
public sealed record ExplainStep(string Authorizer, AuthorizationDecision Decision, string Reason, string? Error, string? Detail);

/// <summary>A decision with the path that led to it, layer by layer.</summary>
public sealed record AuthorizationExplanation(
    AuthorizationAttributes Attributes,
    AuthorizationResult Result,
    IReadOnlyList<ExplainStep> Steps,
    DenyListEntry? DenyListEntry,
    NetworkScope? NetworkScope,
    RbacDecision? Rbac)
{
    public bool Allowed => Result.IsAllowed;

    /// <summary>Where API Priority and Fairness puts the request (it runs before authorization); null when not asked.</summary>
    public Portcullis.Admission.Flowcontrol.FlowcontrolExplanation? PriorityAndFairness { get; init; }

    /// <summary>The layer that decided, or "none" when every layer had no opinion.</summary>
    public string DecidedBy => Result.Authorizer.Length > 0 ? Result.Authorizer : "none";

    /// <summary>The 403 message the gateway would send (empty when allowed).</summary>
    public string ForbiddenMessage => Allowed ? "" : Forbidden.Message(Attributes.User.Name, Attributes.Request, Result.Reason);

    /// <summary>Plain-text rendering for the terminal.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        var r = Attributes.Request;
        var what = r.IsResourceRequest
            ? $"{r.Verb} {r.Resource}{(r.Subresource.Length > 0 ? "/" + r.Subresource : "")}{(r.ApiGroup.Length > 0 ? "." + r.ApiGroup : "")}{(r.Name.Length > 0 ? " \"" + r.Name + "\"" : "")}{(r.Namespace.Length > 0 ? " in namespace " + r.Namespace : " at the cluster scope")}"
            : $"{r.Verb} path {r.Path}";
        sb.Append(Result.IsInternalError ? "error" : Allowed ? "allowed" : "denied")
          .Append(": User \"").Append(Attributes.User.Name).Append("\" ").Append(what).AppendLine();
        sb.Append("  decided by: ").AppendLine(DecidedBy);
        if (Result.Reason.Length > 0)
        {
            sb.Append("  reason: ").AppendLine(Result.Reason.Replace("\n", "\n          ", StringComparison.Ordinal));
        }
        if (Result.Error is not null)
        {
            sb.Append("  error: ").AppendLine(Result.Error);
        }
        if (!Allowed && !Result.IsInternalError)
        {
            sb.Append("  403 message: ").AppendLine(ForbiddenMessage);
        }
        PriorityAndFairness?.AppendText(sb);
        sb.AppendLine("  layers:");
        foreach (var s in Steps)
        {
            sb.Append("    ").Append(s.Authorizer).Append(": ").Append(s.Decision);
            if (s.Reason.Length > 0)
            {
                sb.Append(" (").Append(s.Reason.Replace("\n", "; ", StringComparison.Ordinal)).Append(')');
            }
            if (s.Error is not null)
            {
                sb.Append(" error: ").Append(s.Error);
            }
            sb.AppendLine();
            if (s.Detail is not null)
            {
                sb.Append("      ").AppendLine(s.Detail);
            }
        }
        return sb.ToString();
    }

    /// <summary>JSON rendering (<c>--json</c>).</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            var r = Attributes.Request;
            w.WriteStartObject();
            w.WriteBoolean("allowed", Allowed);
            w.WriteString("decision", Allowed ? "allow" : "forbid");
            w.WriteString("decidedBy", DecidedBy);
            w.WriteString("reason", Result.Reason);
            if (Result.Error is not null)
            {
                w.WriteString("error", Result.Error);
            }
            if (!Allowed)
            {
                w.WriteString("forbiddenMessage", ForbiddenMessage);
            }
            w.WriteStartObject("user");
            w.WriteString("name", Attributes.User.Name);
            w.WriteStartArray("groups");
            foreach (var g in Attributes.User.Groups)
            {
                w.WriteStringValue(g);
            }
            w.WriteEndArray();
            w.WriteEndObject();
            if (Attributes.SourceAddress is not null)
            {
                w.WriteString("sourceIP", Attributes.SourceAddress.ToString());
            }
            w.WriteStartObject("request");
            w.WriteBoolean("isResourceRequest", r.IsResourceRequest);
            w.WriteString("verb", r.Verb);
            if (r.IsResourceRequest)
            {
                w.WriteString("apiGroup", r.ApiGroup);
                w.WriteString("namespace", r.Namespace);
                w.WriteString("resource", r.Resource);
                w.WriteString("subresource", r.Subresource);
                w.WriteString("name", r.Name);
            }
            else
            {
                w.WriteString("path", r.Path);
            }
            w.WriteEndObject();
            if (DenyListEntry is { } e)
            {
                w.WriteStartObject("denyListEntry");
                w.WriteString("entry", e.Describe());
                w.WriteString("reason", e.Reason);
                w.WriteString("source", e.Source);
                if (e.Expires is { } exp)
                {
                    w.WriteString("expires", exp.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                }
                w.WriteEndObject();
            }
            if (NetworkScope is { } scope)
            {
                w.WriteStartObject("networkScope");
                w.WriteString("name", scope.Name);
                w.WriteString("description", scope.Description);
                w.WriteEndObject();
            }
            if (Rbac is { Grant: { } grant } rbac)
            {
                w.WriteStartObject("rbac");
                w.WriteString("binding", $"{grant.Binding.Kind}/{(grant.Binding.Namespace.Length > 0 ? grant.Binding.Namespace + "/" : "")}{grant.Binding.Name}");
                w.WriteString("role", $"{grant.Binding.RoleRefKind}/{grant.Binding.RoleRefName}");
                w.WriteString("subject", grant.Subject.Describe(grant.Binding.Namespace));
                w.WriteNumber("ruleIndex", rbac.RuleIndex);
                w.WriteString("rule", rbac.Rule?.ToString());
                w.WriteString("bindingSource", grant.Binding.Source);
                w.WriteEndObject();
            }
            PriorityAndFairness?.WriteJson(w);
            w.WriteStartArray("layers");
            foreach (var s in Steps)
            {
                w.WriteStartObject();
                w.WriteString("authorizer", s.Authorizer);
                w.WriteString("decision", s.Decision.ToString());
                w.WriteString("reason", s.Reason);
                if (s.Error is not null)
                {
                    w.WriteString("error", s.Error);
                }
                if (s.Detail is not null)
                {
                    w.WriteString("detail", s.Detail);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}

/// <summary>
/// Runs the chain layer by layer for one request and records what each layer said and why (the code path of
/// <c>portcullis explain</c>). The result equals <see cref="AuthorizerChain.AuthorizeAsync"/>'s.
/// </summary>
public static class AuthorizationExplainer
{
    public static async Task<AuthorizationExplanation> ExplainAsync(AuthorizerChain chain, AuthorizationAttributes attributes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(chain);
        ArgumentNullException.ThrowIfNull(attributes);
        var steps = new List<ExplainStep>();
        DenyListEntry? entry = null;
        NetworkScope? scope = null;
        RbacDecision? rbac = null;
        foreach (var a in chain.Authorizers)
        {
            var result = await a.AuthorizeAsync(attributes, cancellationToken).ConfigureAwait(false);
            string? detail = null;
            switch (a)
            {
                case DenyListAuthorizer d when result.Decision == AuthorizationDecision.Deny:
                    entry = d.Match(attributes);
                    detail = entry is null ? null : $"entry {entry.Describe()} at {entry.Source}{(entry.Expires is { } x ? $", expires {x:O}" : "")}";
                    break;
                case NetworkScopeAuthorizer n when result.Decision == AuthorizationDecision.Deny:
                    scope = n.Violated(attributes.User, attributes.SourceAddress);
                    detail = scope?.Description;
                    break;
                case RbacAuthorizer r:
                    var decision = r.Policy.Evaluate(attributes.User, attributes.Request);
                    rbac = decision;
                    if (decision.Grant is { } g)
                    {
                        detail = $"{g.Binding.Kind} \"{g.Binding.Name}\"{(g.Binding.Namespace.Length > 0 ? " in " + g.Binding.Namespace : "")} ({g.Binding.Source}) → {g.Binding.RoleRefKind} \"{g.Binding.RoleRefName}\" ({g.Role?.Source}) → rule {decision.RuleIndex}: {decision.Rule}";
                    }
                    else
                    {
                        detail = "no binding of this user or its groups grants it";
                    }
                    break;
                default:
                    break;
            }
            steps.Add(new ExplainStep(a.Name, result.Decision, result.Reason, result.Error, detail));
            if (result.Decision != AuthorizationDecision.NoOpinion)
            {
                break;
            }
        }
        var final = await chain.AuthorizeAsync(attributes, cancellationToken).ConfigureAwait(false);
        return new AuthorizationExplanation(attributes, final, steps, entry, scope, rbac);
    }
}
