using System.Globalization;
using System.Text;
using System.Text.Json;
using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Admission.Flowcontrol;

/// <summary>
/// Where API Priority and Fairness puts one request (the APF part of <c>portcullis explain</c>): the flow schema and
/// priority level <see cref="FlowcontrolSystem.Classify"/> picks, the same call the gateway's middleware makes, and the
/// flow's distinguisher. <see cref="Enabled"/> is false when <c>admission.priorityAndFairness.enabled</c> is false;
/// <see cref="Bypassed"/> is true for the long-running requests the gateway lets past APF (exec, attach, port-forward,
/// proxy, logs).
/// </summary>
public sealed record FlowcontrolExplanation(bool Enabled, bool Bypassed, FlowSchema? FlowSchema, PriorityLevel? PriorityLevel, string Distinguisher)
{
    /// <summary>APF is off in the configuration.</summary>
    public static FlowcontrolExplanation Disabled { get; } = new(false, false, null, null, "");

    /// <summary>Classifies <paramref name="request"/> of <paramref name="user"/> as the gateway does (null system: disabled).</summary>
    public static FlowcontrolExplanation Explain(FlowcontrolSystem? system, UserInfo user, RequestInfo request)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(request);
        if (system is null)
        {
            return Disabled;
        }
        if (FlowcontrolSystem.Bypasses(request))
        {
            return new FlowcontrolExplanation(true, true, null, null, "");
        }
        var c = system.Classify(user, request);
        return new FlowcontrolExplanation(true, false, c.FlowSchema, c.PriorityLevel, c.FlowSchema.Distinguisher(user, request));
    }

    /// <summary>"Exempt" or "Limited", as the PriorityLevelConfiguration's <c>spec.type</c>.</summary>
    public string? PriorityLevelType => PriorityLevel is null ? null : PriorityLevel.IsExempt ? "Exempt" : "Limited";

    /// <summary>The text block of <c>portcullis explain</c>.</summary>
    public void AppendText(StringBuilder sb)
    {
        ArgumentNullException.ThrowIfNull(sb);
        if (!Enabled)
        {
            sb.AppendLine("  priority and fairness: disabled (admission.priorityAndFairness.enabled is false)");
            return;
        }
        if (Bypassed)
        {
            sb.AppendLine("  priority and fairness: bypassed (a long-running request: exec, attach, port-forward, proxy and logs hold no seat)");
            return;
        }
        var schema = FlowSchema!;
        var level = PriorityLevel!;
        sb.AppendLine("  priority and fairness:");
        sb.Append("    flow schema: ").Append(schema.Name).Append(" (matchingPrecedence ")
          .Append(schema.MatchingPrecedence.ToString(CultureInfo.InvariantCulture)).Append(')');
        if (schema.Source.Length > 0)
        {
            sb.Append(" from ").Append(schema.Source);
        }
        sb.AppendLine();
        sb.Append("    priority level: ").Append(level.Name).Append(" (").Append(PriorityLevelType);
        if (!level.IsExempt)
        {
            sb.Append(", ").Append(level.NominalLimit.ToString(CultureInfo.InvariantCulture)).Append(" nominal seats, ")
              .Append(level.Config.Reject ? "rejects when full" : $"queues {level.Config.Queues.ToString(CultureInfo.InvariantCulture)} × {level.Config.QueueLengthLimit.ToString(CultureInfo.InvariantCulture)}");
        }
        sb.AppendLine(")");
        sb.Append("    distinguisher: ").Append(schema.DistinguisherMethod ?? "none");
        if (schema.DistinguisherMethod is not null)
        {
            sb.Append(" = \"").Append(Distinguisher).Append('"');
        }
        sb.AppendLine();
    }

    /// <summary>The <c>priorityAndFairness</c> object of <c>portcullis explain --json</c>.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject("priorityAndFairness");
        w.WriteBoolean("enabled", Enabled);
        if (Enabled)
        {
            w.WriteBoolean("bypassed", Bypassed);
        }
        if (FlowSchema is { } schema && PriorityLevel is { } level)
        {
            w.WriteStartObject("flowSchema");
            w.WriteString("name", schema.Name);
            w.WriteString("uid", schema.Uid);
            w.WriteNumber("matchingPrecedence", schema.MatchingPrecedence);
            if (schema.DistinguisherMethod is null)
            {
                w.WriteNull("distinguisherMethod");
            }
            else
            {
                w.WriteString("distinguisherMethod", schema.DistinguisherMethod);
            }
            w.WriteString("source", schema.Source);
            w.WriteEndObject();
            w.WriteStartObject("priorityLevel");
            w.WriteString("name", level.Name);
            w.WriteString("uid", level.Uid);
            w.WriteString("type", PriorityLevelType);
            w.WriteNumber("nominalConcurrencyShares", level.Config.NominalConcurrencyShares);
            w.WriteNumber("nominalSeats", level.NominalLimit);
            if (!level.IsExempt)
            {
                w.WriteString("limitResponse", level.Config.Reject ? "Reject" : "Queue");
            }
            w.WriteEndObject();
            w.WriteString("distinguisher", Distinguisher);
        }
        w.WriteEndObject();
    }
}
