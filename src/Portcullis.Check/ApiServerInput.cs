namespace Portcullis.Check;

/// <summary>Where a configuration came from.</summary>
public enum InputKind
{
    Manifest,
    Flags,
    LiveCluster,
}

/// <summary>A kube-apiserver configuration to score: its flags and a way to read the files they name.</summary>
public sealed class ApiServerInput
{
    public ApiServerInput(string source, InputKind kind, ApiServerFlags flags, ReferencedFiles files, LiveClusterFacts? live = null)
    {
        Source = source;
        Kind = kind;
        Flags = flags;
        Files = files;
        Live = live;
    }

    /// <summary>A human description: file path, "command line", or cluster context.</summary>
    public string Source { get; }
    public InputKind Kind { get; }
    public ApiServerFlags Flags { get; }
    public ReferencedFiles Files { get; }
    /// <summary>What only a live cluster can tell (APF objects, the kubernetes Service); null otherwise.</summary>
    public LiveClusterFacts? Live { get; }
}

/// <summary>Facts read from a live cluster besides the kube-apiserver Pod.</summary>
/// <param name="FlowSchemas">Names of FlowSchemas, or null when they could not be listed.</param>
/// <param name="PriorityLevels">Names of PriorityLevelConfigurations, or null when they could not be listed.</param>
/// <param name="KubernetesServiceType">The <c>default/kubernetes</c> Service type (ClusterIP expected).</param>
/// <param name="Problems">What could not be read, said plainly.</param>
public sealed record LiveClusterFacts(
    IReadOnlyList<string>? FlowSchemas,
    IReadOnlyList<string>? PriorityLevels,
    string? KubernetesServiceType,
    IReadOnlyList<string> ExternalAddresses,
    IReadOnlyList<string> Problems);

/// <summary>The result of looking for a file a flag names.</summary>
/// <param name="Named">The path as the flag gives it.</param>
/// <param name="HostPath">Where it was looked for on this machine; null when it cannot be looked for.</param>
/// <param name="Text">Its contents, when it was read.</param>
/// <param name="Problem">Why it could not be read, when it was not.</param>
public sealed record ReferencedFile(string Named, string? HostPath, string? Text, string? Problem)
{
    public bool WasRead => Text is not null;
    public string Where => HostPath is null || HostPath == Named ? Named : $"{Named} (read at {HostPath})";
}

/// <summary>
/// Resolves paths named in flags to files on this machine: through the Pod's hostPath volume mounts for a
/// static pod manifest, under <c>--root</c> when given (a copy of a node's filesystem).
/// </summary>
public sealed class ReferencedFiles
{
    private readonly string? _root;
    private readonly IReadOnlyList<(string MountPath, string HostPath)> _mounts;
    private readonly bool _readable;

    private ReferencedFiles(string? root, IReadOnlyList<(string, string)> mounts, bool readable)
    {
        _root = root;
        _mounts = mounts;
        _readable = readable;
    }

    /// <summary>No file can be read (a live cluster: the files are on the control-plane nodes).</summary>
    public static ReferencedFiles None { get; } = new(null, [], false);

    /// <summary>Files are read on this machine, optionally under <paramref name="root"/>, through <paramref name="mounts"/>.</summary>
    public static ReferencedFiles OnThisMachine(string? root, IReadOnlyList<(string MountPath, string HostPath)>? mounts = null) =>
        new(string.IsNullOrEmpty(root) ? null : root, mounts ?? [], true);

    /// <summary>Maps a container path to the host path through the longest matching volume mount.</summary>
    public string MapToHost(string path)
    {
        var best = ("", "");
        foreach (var (mountPath, hostPath) in _mounts)
        {
            var m = mountPath.TrimEnd('/');
            if ((path == m || path.StartsWith(m + "/", StringComparison.Ordinal)) && m.Length > best.Item1.Length)
            {
                best = (m, hostPath.TrimEnd('/'));
            }
        }
        var mapped = best.Item1.Length == 0 ? path : best.Item2 + path[best.Item1.Length..];
        if (_root is null)
        {
            return mapped;
        }
        return Path.IsPathRooted(mapped) ? Path.Combine(_root, mapped.TrimStart('/')) : Path.Combine(_root, mapped);
    }

    /// <summary>Reads the file a flag names; never throws.</summary>
    public ReferencedFile Read(string named)
    {
        if (!_readable)
        {
            return new ReferencedFile(named, null, null, "the file is on the control-plane node and cannot be read from a live cluster query");
        }
        var host = MapToHost(named);
        try
        {
            if (!File.Exists(host))
            {
                return new ReferencedFile(named, host, null, $"not found at {host} (use --root to point at a copy of the node's filesystem)");
            }
            return new ReferencedFile(named, host, File.ReadAllText(host), null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return new ReferencedFile(named, host, null, $"cannot be read at {host}: {ex.Message}");
        }
    }

    /// <summary>Reads a file named relative to another file (e.g. EventRateLimit's <c>path:</c> in an AdmissionConfiguration).</summary>
    public ReferencedFile ReadRelative(ReferencedFile parent, string named)
    {
        if (Path.IsPathRooted(named) || parent.HostPath is null)
        {
            return Read(named);
        }
        var host = Path.Combine(Path.GetDirectoryName(parent.HostPath) ?? "", named);
        try
        {
            return File.Exists(host)
                ? new ReferencedFile(named, host, File.ReadAllText(host), null)
                : new ReferencedFile(named, host, null, $"not found at {host}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return new ReferencedFile(named, host, null, $"cannot be read at {host}: {ex.Message}");
        }
    }
}
