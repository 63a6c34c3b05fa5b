namespace Portcullis.Check;

/// <summary>The outcome of one check, as kube-bench and CI tools understand it.</summary>
public enum CheckStatus
{
    Pass,
    Info,
    Warn,
    Fail,
}

/// <summary>The six layers of restricting API access; every finding belongs to one.</summary>
public enum CheckLayer
{
    Network = 1,
    Tls = 2,
    Authentication = 3,
    Authorization = 4,
    Admission = 5,
    Audit = 6,
}

/// <summary>One result: which rule, where it looked, what it saw and how to fix it.</summary>
/// <param name="Id">CIS Kubernetes Benchmark id (e.g. <c>1.2.1</c>) or a Portcullis id (<c>PC-…</c>).</param>
/// <param name="Evidence">The flag and value, or file and field, that decided the status.</param>
/// <param name="Remediation">A snippet that fixes it; empty when nothing needs fixing.</param>
/// <param name="Location">The file the evidence comes from, when there is one.</param>
public sealed record Finding(
    string Id,
    string Title,
    CheckLayer Layer,
    CheckStatus Status,
    string Evidence,
    string Remediation,
    string? Location = null);

/// <summary>Everything a run produced: the findings, or why the input could not be read.</summary>
public sealed record CheckReport(string Tool, string Source, IReadOnlyList<Finding> Findings, string? InputError = null)
{
    /// <summary>0 when nothing fails, 1 when something does, 2 when the input could not be read.</summary>
    public int ExitCode => InputError is not null ? ExitCodes.InputUnreadable : Findings.Any(f => f.Status == CheckStatus.Fail) ? ExitCodes.Failures : ExitCodes.Ok;

    public int Count(CheckStatus status) => Findings.Count(f => f.Status == status);

    public static CheckReport Unreadable(string tool, string source, string error) => new(tool, source, [], error);
}

/// <summary>Process exit codes shared by <c>check</c> and <c>probe</c>.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failures = 1;
    public const int InputUnreadable = 2;
}

/// <summary>Display names of the layers, as in the design's diagram.</summary>
public static class CheckLayers
{
    public static string Name(CheckLayer layer) => layer switch
    {
        CheckLayer.Network => "L1 Network",
        CheckLayer.Tls => "L2 TLS",
        CheckLayer.Authentication => "L3 Authentication",
        CheckLayer.Authorization => "L4 Authorization",
        CheckLayer.Admission => "L5 Admission",
        CheckLayer.Audit => "L6 Audit",
        _ => layer.ToString(),
    };
}
