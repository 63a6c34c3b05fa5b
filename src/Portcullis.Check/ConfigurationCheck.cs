using Portcullis.Audit;
using Portcullis.Check.Readers;
using Portcullis.Check.Rules;
using Portcullis.Configuration;

namespace Portcullis.Check;

/// <summary>Entry points of <c>portcullis check</c> that need no cluster: manifest, flags, gateway configuration.</summary>
public static class ConfigurationCheck
{
    public const string Tool = "portcullis check";

    public static CheckReport FromManifest(string path, string? root)
    {
        var input = ManifestReader.Read(path, root, out var error);
        return input is null ? CheckReport.Unreadable(Tool, path, error!) : Run(input);
    }

    public static CheckReport FromFlags(string commandLine, string? root, string source = "command line")
    {
        var flags = ApiServerFlags.FromCommandLine(commandLine);
        if (flags.Entries.Count == 0)
        {
            return CheckReport.Unreadable(Tool, source, $"{source}: no --flags found");
        }
        return Run(new ApiServerInput(source, InputKind.Flags, flags, ReferencedFiles.OnThisMachine(root)));
    }

    public static CheckReport FromFlagsFile(string path, string? root)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return CheckReport.Unreadable(Tool, path, $"{path}: cannot be read: {ex.Message}");
        }
        return FromFlags(text, root, path);
    }

    /// <summary>
    /// Scores a gateway configuration that has been loaded as <c>portcullis serve</c> loads it (the CLI uses
    /// <c>GatewayConfigurationPipeline.Load</c>): <paramref name="config"/> is null when <paramref name="errors"/> says
    /// why it would not be served, and then the input is unreadable. <paramref name="auditPolicy"/> is the policy that
    /// load parsed (its snapshot's), scored without reading the file a second time.
    /// </summary>
    public static CheckReport FromGateway(string path, GatewayConfiguration? config, AuditPolicy? auditPolicy, IReadOnlyList<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (config is null || errors.Count > 0)
        {
            return CheckReport.Unreadable(Tool, path, string.Join(Environment.NewLine, errors.Select(e => e.ToString())));
        }
        return new CheckReport(Tool, path, GatewayChecks.Run(config, auditPolicy));
    }

    public static CheckReport Run(ApiServerInput input) => new(Tool, input.Source, ApiServerChecks.Run(input));

    /// <summary>
    /// A live cluster's report, read through <paramref name="kubeconfig"/>: the API server's rules, and the lifetime of
    /// the client certificates that kubeconfig itself holds (<c>PC-L2-CERT-LIFETIME</c>).
    /// </summary>
    public static CheckReport Run(ApiServerInput input, string kubeconfig)
    {
        ArgumentNullException.ThrowIfNull(input);
        var own = new FindingList();
        CertificateLifetimes.ScoreKubeconfig(own, "--kubeconfig=" + kubeconfig, ReferencedFiles.OnThisMachine(null).Read(kubeconfig),
            CertificateLifetimes.DefaultLimit, CertificateLifetimes.DefaultLimitSource);
        return new(Tool, input.Source, [.. ApiServerChecks.Run(input).Concat(own.Findings).OrderBy(x => x.Layer)]);
    }
}
