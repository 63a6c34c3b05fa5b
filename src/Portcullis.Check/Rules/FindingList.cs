namespace Portcullis.Check.Rules;

/// <summary>A rule's fixed parts: id, title, layer and the fix.</summary>
public sealed record RuleInfo(string Id, string Title, CheckLayer Layer, string Remediation);

/// <summary>Collects findings for one run; rules add to it in layer order.</summary>
internal sealed class FindingList
{
    private readonly List<Finding> _findings = [];

    public IReadOnlyList<Finding> Findings => _findings;

    public void Add(RuleInfo rule, CheckStatus status, string evidence, string? location = null) =>
        _findings.Add(new Finding(rule.Id, rule.Title, rule.Layer, status, evidence,
            status is CheckStatus.Pass or CheckStatus.Info ? "" : rule.Remediation, location));

    public void Pass(RuleInfo rule, string evidence, string? location = null) => Add(rule, CheckStatus.Pass, evidence, location);
    public void Info(RuleInfo rule, string evidence, string? location = null) => Add(rule, CheckStatus.Info, evidence, location);
    public void Warn(RuleInfo rule, string evidence, string? location = null) => Add(rule, CheckStatus.Warn, evidence, location);
    public void Fail(RuleInfo rule, string evidence, string? location = null) => Add(rule, CheckStatus.Fail, evidence, location);
}
