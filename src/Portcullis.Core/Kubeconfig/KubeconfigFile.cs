using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Portcullis.Configuration;
using Portcullis.Tls;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Kubeconfig;

/// <summary>One cluster entry: <c>clusters[].cluster</c>.</summary>
public sealed record KubeconfigCluster(string Name, string Server, string CertificateAuthority, string CertificateAuthorityData,
    bool InsecureSkipTlsVerify, string TlsServerName, int Line = 0);

/// <summary>One user entry: <c>users[].user</c>. <paramref name="Plugin"/> names a credential plugin field
/// (<c>auth-provider</c> or <c>exec</c>) when the entry has one: Portcullis runs none, so resolving such a user fails.</summary>
public sealed record KubeconfigUser(string Name, string ClientCertificate, string ClientCertificateData, string ClientKey,
    string ClientKeyData, string Token, string TokenFile, string Plugin = "", int Line = 0);

/// <summary>One context entry: <c>contexts[].context</c>.</summary>
public sealed record KubeconfigContext(string Name, string Cluster, string User, string Namespace, int Line = 0);

/// <summary>
/// A kubeconfig file (<c>kind: Config</c>) as kube-apiserver reads webhook configs: clusters, users, contexts and
/// current-context. Relative file paths are resolved against the file's folder. Use <see cref="Resolve"/> for a
/// ready-to-use endpoint and <see cref="KubeconfigEndpoint.CreateHandler"/> for an HttpClient handler.
/// </summary>
public sealed class KubeconfigFile
{
    public required string Path { get; init; }
    public IReadOnlyList<KubeconfigCluster> Clusters { get; init; } = [];
    public IReadOnlyList<KubeconfigUser> Users { get; init; } = [];
    public IReadOnlyList<KubeconfigContext> Contexts { get; init; } = [];
    public string CurrentContext { get; init; } = "";

    /// <summary>Reads and parses a kubeconfig; errors name file:line.</summary>
    public static (KubeconfigFile? File, IReadOnlyList<ConfigError> Errors) Load(string path)
    {
        var errors = new List<ConfigError>();
        var full = System.IO.Path.GetFullPath(path);
        string text;
        try
        {
            text = File.ReadAllText(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError(full, 0, "(file)", $"cannot read the kubeconfig: {ex.Message}"));
            return (null, errors);
        }
        var file = Parse(text, full, errors);
        return (errors.Count == 0 ? file : null, errors);
    }

    /// <summary>
    /// Reads the kubeconfig at <paramref name="path"/> and resolves <paramref name="contextName"/> (see
    /// <see cref="TryResolve"/>): the endpoint, or null with every problem added to <paramref name="errors"/>.
    /// </summary>
    public static KubeconfigEndpoint? LoadEndpoint(string path, List<ConfigError> errors, string? contextName = null)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var (file, loadErrors) = Load(path);
        errors.AddRange(loadErrors);
        return file?.TryResolve(errors, contextName);
    }

    /// <summary>Parses kubeconfig text as if read from <paramref name="path"/>.</summary>
    public static KubeconfigFile? Parse(string text, string path, List<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var binder = new YamlBinder(path, errors);
        var docs = binder.Parse(text);
        if (errors.Count > 0)
        {
            return null;
        }
        if (docs.Count != 1 || docs[0].RootNode is not YamlMappingNode root)
        {
            errors.Add(new ConfigError(path, 0, "(document)", "a kubeconfig is one YAML mapping"));
            return null;
        }
        var clusters = new List<KubeconfigCluster>();
        foreach (var (node, inner) in Items(root, "clusters", "cluster"))
        {
            var name = Str(node, "name");
            var server = Str(inner, "server");
            if (server.Length == 0)
            {
                binder.Error(inner ?? node, "clusters.cluster.server", $"cluster \"{name}\" has no server");
            }
            clusters.Add(new KubeconfigCluster(name, server, Str(inner, "certificate-authority"), Str(inner, "certificate-authority-data"),
                Str(inner, "insecure-skip-tls-verify") == "true", Str(inner, "tls-server-name"), LineOf(inner ?? node)));
        }
        var users = new List<KubeconfigUser>();
        foreach (var (node, inner) in Items(root, "users", "user"))
        {
            var plugin = inner is null ? "" : Array.Find(CredentialPlugins, p => inner.Children.ContainsKey(new YamlScalarNode(p))) ?? "";
            users.Add(new KubeconfigUser(Str(node, "name"), Str(inner, "client-certificate"), Str(inner, "client-certificate-data"),
                Str(inner, "client-key"), Str(inner, "client-key-data"), Str(inner, "token"), Str(inner, "tokenFile"), plugin, LineOf(inner ?? node)));
        }
        var contexts = new List<KubeconfigContext>();
        foreach (var (node, inner) in Items(root, "contexts", "context"))
        {
            contexts.Add(new KubeconfigContext(Str(node, "name"), Str(inner, "cluster"), Str(inner, "user"), Str(inner, "namespace"), LineOf(inner ?? node)));
        }
        return new KubeconfigFile
        {
            Path = path,
            Clusters = clusters,
            Users = users,
            Contexts = contexts,
            CurrentContext = Str(root, "current-context"),
        };
    }

    /// <summary>
    /// The endpoint of <paramref name="contextName"/> (default: current-context; with no contexts at all, the first
    /// cluster and first user, as kube-apiserver's webhook loader accepts). Throws <see cref="InvalidOperationException"/>
    /// with every problem (file:line, field) when something is missing or unreadable.
    /// </summary>
    public KubeconfigEndpoint Resolve(string? contextName = null)
    {
        var errors = new List<ConfigError>();
        return TryResolve(errors, contextName) ?? throw new InvalidOperationException(string.Join("; ", errors));
    }

    /// <summary>
    /// As <see cref="Resolve"/>, but adds each problem to <paramref name="errors"/> (file:line, field) and returns null.
    /// A user with a credential plugin (auth-provider, exec) is refused rather than sent without credentials. Messages
    /// name files and fields, never a token or key.
    /// </summary>
    public KubeconfigEndpoint? TryResolve(List<ConfigError> errors, string? contextName = null)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var before = errors.Count;
        var name = string.IsNullOrEmpty(contextName) ? CurrentContext : contextName;
        KubeconfigCluster? cluster;
        KubeconfigUser? user;
        if (name.Length == 0 && Contexts.Count == 0)
        {
            cluster = Clusters.Count > 0 ? Clusters[0] : null;
            user = Users.Count > 0 ? Users[0] : null;
        }
        else
        {
            var context = Contexts.FirstOrDefault(c => c.Name == name);
            if (context is null)
            {
                errors.Add(new ConfigError(Path, 0, "current-context", $"context \"{name}\" not found in contexts"));
                return null;
            }
            cluster = Clusters.FirstOrDefault(c => c.Name == context.Cluster);
            if (cluster is null)
            {
                errors.Add(new ConfigError(Path, context.Line, "contexts.context.cluster", $"cluster \"{context.Cluster}\" of context \"{name}\" not found in clusters"));
                return null;
            }
            user = null;
            if (context.User.Length > 0 && (user = Users.FirstOrDefault(u => u.Name == context.User)) is null)
            {
                errors.Add(new ConfigError(Path, context.Line, "contexts.context.user", $"user \"{context.User}\" of context \"{name}\" not found in users"));
                return null;
            }
        }
        if (cluster is null)
        {
            errors.Add(new ConfigError(Path, 0, "clusters", "no cluster: clusters[].cluster.server is needed"));
            return null;
        }
        if (!Uri.TryCreate(cluster.Server, UriKind.Absolute, out var server) || (server.Scheme != Uri.UriSchemeHttps && server.Scheme != Uri.UriSchemeHttp))
        {
            errors.Add(new ConfigError(Path, cluster.Line, "clusters.cluster.server", $"\"{cluster.Server}\" is not an absolute http(s) URL"));
            return null;
        }
        if (user is { Plugin.Length: > 0 })
        {
            errors.Add(new ConfigError(Path, user.Line, "users.user." + user.Plugin,
                $"credential plugins ({user.Plugin}) are not supported; use token, tokenFile or client-certificate and client-key"));
            return null;
        }

        X509Certificate2Collection? ca = null;
        var caPem = ReadPem(cluster.CertificateAuthorityData, cluster.CertificateAuthority, "clusters.cluster.certificate-authority", cluster.Line, errors);
        if (caPem is not null)
        {
            ca = [];
            try
            {
                ca.ImportFromPem(caPem);
                if (ca.Count == 0)
                {
                    errors.Add(new ConfigError(Path, cluster.Line, "clusters.cluster.certificate-authority", "holds no PEM certificate"));
                }
            }
            catch (CryptographicException ex)
            {
                errors.Add(new ConfigError(Path, cluster.Line, "clusters.cluster.certificate-authority", $"not a PEM certificate: {ex.Message}"));
            }
        }
        X509Certificate2? clientCert = null;
        string? token = null;
        if (user is not null)
        {
            var certPem = ReadPem(user.ClientCertificateData, user.ClientCertificate, "users.user.client-certificate", user.Line, errors);
            var keyPem = ReadPem(user.ClientKeyData, user.ClientKey, "users.user.client-key", user.Line, errors);
            if (certPem is not null && keyPem is not null)
            {
                try
                {
                    clientCert = PemCertificates.LoadWithKey(certPem, keyPem);
                }
                catch (Exception ex) when (ex is CryptographicException or ArgumentException)
                {
                    errors.Add(new ConfigError(Path, user.Line, "users.user.client-certificate",
                        $"the client certificate and key of user \"{user.Name}\" cannot be loaded: {ex.GetType().Name}"));
                }
            }
            else if ((user.ClientCertificate.Length > 0 || user.ClientCertificateData.Length > 0) != (user.ClientKey.Length > 0 || user.ClientKeyData.Length > 0))
            {
                errors.Add(new ConfigError(Path, user.Line, "users.user", $"user \"{user.Name}\" needs both a client certificate and a client key"));
            }
            // As client-go: a tokenFile, when given, takes precedence over token.
            token = user.TokenFile.Length > 0 ? ReadFile(user.TokenFile, "users.user.tokenFile", user.Line, errors)?.Trim()
                : user.Token.Length > 0 ? user.Token : null;
        }
        if (errors.Count > before)
        {
            clientCert?.Dispose();
            return null;
        }
        return new KubeconfigEndpoint(server, ca, clientCert, string.IsNullOrEmpty(token) ? null : token, cluster.InsecureSkipTlsVerify,
            cluster.TlsServerName.Length > 0 ? cluster.TlsServerName : null);
    }

    /// <summary>The PEM text of <c>field-data</c> (base64) or else of the file <c>field</c>; null when neither is set.</summary>
    /// <summary>
    /// The PEM text of <paramref name="user"/>'s client certificate, from <c>client-certificate-data</c> or the file
    /// <c>client-certificate</c> names (relative to this kubeconfig); null when it has none or it cannot be read (then
    /// the problem is added to <paramref name="errors"/>).
    /// </summary>
    public string? ClientCertificatePem(KubeconfigUser user, List<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(errors);
        return ReadPem(user.ClientCertificateData, user.ClientCertificate, "users.user.client-certificate", user.Line, errors);
    }

    private string? ReadPem(string base64, string file, string field, int line, List<ConfigError> errors)
    {
        if (base64.Length > 0)
        {
            try
            {
                return Encoding.UTF8.GetString(Convert.FromBase64String(base64));
            }
            catch (FormatException)
            {
                errors.Add(new ConfigError(Path, line, field + "-data", "is not base64"));
                return null;
            }
        }
        return file.Length > 0 ? ReadFile(file, field, line, errors) : null;
    }

    private string? ReadFile(string file, string field, int line, List<ConfigError> errors)
    {
        var full = System.IO.Path.GetFullPath(System.IO.Path.IsPathRooted(file) ? file : System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path) ?? ".", file));
        try
        {
            return File.ReadAllText(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError(Path, line, field, $"cannot read the credentials or CA from \"{full}\": {ex.GetType().Name}"));
            return null;
        }
    }

    private static readonly string[] CredentialPlugins = ["auth-provider", "exec"];

    private static int LineOf(YamlNode node) => (int)node.Start.Line;

    private static IEnumerable<(YamlMappingNode Node, YamlMappingNode? Inner)> Items(YamlMappingNode root, string list, string inner)
    {
        if (!root.Children.TryGetValue(new YamlScalarNode(list), out var node) || node is not YamlSequenceNode seq)
        {
            yield break;
        }
        foreach (var item in seq.Children.OfType<YamlMappingNode>())
        {
            yield return (item, item.Children.TryGetValue(new YamlScalarNode(inner), out var i) ? i as YamlMappingNode : null);
        }
    }

    private static string Str(YamlMappingNode? map, string key) =>
        map is not null && map.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value ?? "" : "";
}

/// <summary>A resolved kubeconfig endpoint: server URL, trust and credentials.</summary>
public sealed record KubeconfigEndpoint(Uri Server, X509Certificate2Collection? CertificateAuthorities, X509Certificate2? ClientCertificate,
    string? Token, bool InsecureSkipTlsVerify, string? TlsServerName)
{
    /// <summary>
    /// A handler that trusts only <see cref="CertificateAuthorities"/> when given (custom root trust), presents the client
    /// certificate, and never follows redirects. Bearer tokens are added by the caller (Authorization header).
    /// </summary>
    public SocketsHttpHandler CreateHandler()
    {
        var handler = new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        var ssl = new SslClientAuthenticationOptions { TargetHost = TlsServerName };
        if (ClientCertificate is not null)
        {
            ssl.ClientCertificates = [ClientCertificate];
        }
        if (InsecureSkipTlsVerify)
        {
#pragma warning disable CA5359 // the kubeconfig asked for it explicitly (insecure-skip-tls-verify: true)
            ssl.RemoteCertificateValidationCallback = (_, _, _, _) => true;
#pragma warning restore CA5359
        }
        else if (CertificateAuthorities is { Count: > 0 } roots)
        {
            ssl.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            ssl.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
        }
        handler.SslOptions = ssl;
        return handler;
    }
}
