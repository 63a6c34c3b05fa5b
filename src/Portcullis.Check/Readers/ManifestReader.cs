using YamlDotNet.RepresentationModel;

namespace Portcullis.Check.Readers;

/// <summary>
/// Reads kube-apiserver's flags from a static pod manifest (or any Pod/Deployment/List holding it) and maps the
/// files they name through the Pod's hostPath volume mounts.
/// </summary>
public static class ManifestReader
{
    /// <summary>Reads <paramref name="path"/>; returns null with <paramref name="error"/> when it cannot be used.</summary>
    public static ApiServerInput? Read(string path, string? root, out string? error)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            error = $"{path}: cannot be read: {ex.Message}";
            return null;
        }
        return Parse(text, path, root, out error);
    }

    /// <summary>Parses manifest text; <paramref name="where"/> names it in messages.</summary>
    public static ApiServerInput? Parse(string text, string where, string? root, out string? error)
    {
        var documents = YamlDocuments.TryLoad(text, where, out error);
        if (documents is null)
        {
            return null;
        }
        foreach (var pod in documents.SelectMany(PodSpecs))
        {
            var container = FindApiServerContainer(pod);
            if (container is null)
            {
                continue;
            }
            var arguments = container.Strings("command").Concat(container.Strings("args"));
            var flags = ApiServerFlags.FromArguments(arguments);
            var files = ReferencedFiles.OnThisMachine(root, Mounts(pod, container));
            error = null;
            return new ApiServerInput(where, InputKind.Manifest, flags, files);
        }
        error = $"{where}: no kube-apiserver container found (looked for a Pod, Deployment, DaemonSet or List whose container is named kube-apiserver or runs it)";
        return null;
    }

    private static IEnumerable<YamlNode> PodSpecs(YamlNode document)
    {
        var items = document.Seq("items").ToList();
        if (items.Count > 0)
        {
            foreach (var item in items)
            {
                foreach (var spec in PodSpecs(item))
                {
                    yield return spec;
                }
            }
            yield break;
        }
        var spec0 = document.Map("spec");
        if (spec0.Get("containers") is not null)
        {
            yield return spec0!;
        }
        var template = spec0.Map("template").Map("spec");
        if (template.Get("containers") is not null)
        {
            yield return template!;
        }
    }

    private static YamlNode? FindApiServerContainer(YamlNode podSpec)
    {
        var containers = podSpec.Seq("containers").ToList();
        return containers.FirstOrDefault(c => c.Str("name") == "kube-apiserver")
            ?? containers.FirstOrDefault(c => c.Strings("command").Concat(c.Strings("args")).Any(a => a.Contains("kube-apiserver", StringComparison.Ordinal)))
            ?? containers.FirstOrDefault(c => (c.Str("image") ?? "").Contains("kube-apiserver", StringComparison.Ordinal));
    }

    private static List<(string MountPath, string HostPath)> Mounts(YamlNode podSpec, YamlNode container)
    {
        var hostPaths = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var volume in podSpec.Seq("volumes"))
        {
            var name = volume.Str("name");
            var hostPath = volume.Map("hostPath").Str("path");
            if (name is not null && hostPath is not null)
            {
                hostPaths[name] = hostPath;
            }
        }
        var mounts = new List<(string, string)>();
        foreach (var mount in container.Seq("volumeMounts"))
        {
            var name = mount.Str("name");
            var mountPath = mount.Str("mountPath");
            if (name is null || mountPath is null || !hostPaths.TryGetValue(name, out var hostPath))
            {
                continue;
            }
            var subPath = mount.Str("subPath");
            mounts.Add((mountPath, string.IsNullOrEmpty(subPath) ? hostPath : hostPath.TrimEnd('/') + "/" + subPath));
        }
        return mounts;
    }
}
