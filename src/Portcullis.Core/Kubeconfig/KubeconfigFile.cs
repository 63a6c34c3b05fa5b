using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Kubeconfig;

/// <summary>One cluster entry: <c>clusters[].cluster</c>.</summary>
public sealed record KubeconfigCluster(string Name, string Server, string CertificateAuthority, string CertificateAuthorityData,
    bool InsecureSkipTlsVerify, string TlsServerName);

/// <summary>One user entry: <c>users[].user</c>.</summary>
public sealed record KubeconfigUser(string Name, string ClientCertificate, string ClientCertificateData, string ClientKey,
    string ClientKeyData, string Token, string TokenFile);

/// <summary>One context entry: <c>contexts[].context</c>.</summary>
public sealed record KubeconfigContext(string Name, string Cluster, string User, string Namespace);

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
                Str(inner, "insecure-skip-tls-verify") == "true", Str(inner, "tls-server-name")));
        }
        var users = new List<KubeconfigUser>();
        foreach (var (node, inner) in Items(root, "users", "user"))
        {
            users.Add(new KubeconfigUser(Str(node, "name"), Str(inner, "client-certificate"), Str(inner, "client-certificate-data"),
                Str(inner, "client-key"), Str(inner, "client-key-data"), Str(inner, "token"), Str(inner, "tokenFile")));
        }
        var contexts = new List<KubeconfigContext>();
        foreach (var (node, inner) in Items(root, "contexts", "context"))
        {
            contexts.Add(new KubeconfigContext(Str(node, "name"), Str(inner, "cluster"), Str(inner, "user"), Str(inner, "namespace")));
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
    /// with a message naming the file when something is missing or unreadable.
    /// </summary>
    public KubeconfigEndpoint Resolve(string? contextName = null)
    {
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
            var context = Contexts.FirstOrDefault(c => c.Name == name)
                ?? throw new InvalidOperationException($"{Path}: context \"{name}\" not found");
            cluster = Clusters.FirstOrDefault(c => c.Name == context.Cluster)
                ?? throw new InvalidOperationException($"{Path}: cluster \"{context.Cluster}\" of context \"{name}\" not found");
            user = context.User.Length == 0 ? null : Users.FirstOrDefault(u => u.Name == context.User)
                ?? throw new InvalidOperationException($"{Path}: user \"{context.User}\" of context \"{name}\" not found");
        }
        if (cluster is null)
        {
            throw new InvalidOperationException($"{Path}: no cluster");
        }
        if (!Uri.TryCreate(cluster.Server, UriKind.Absolute, out var server) || (server.Scheme != Uri.UriSchemeHttps && server.Scheme != Uri.UriSchemeHttp))
        {
            throw new InvalidOperationException($"{Path}: server \"{cluster.Server}\" is not an https:// URL");
        }
        var dir = System.IO.Path.GetDirectoryName(Path) ?? ".";
        string Read(string file) => File.ReadAllText(System.IO.Path.IsPathRooted(file) ? file : System.IO.Path.Combine(dir, file));
        string Decode(string base64) => Encoding.UTF8.GetString(Convert.FromBase64String(base64));

        X509Certificate2Collection? ca = null;
        try
        {
            var caPem = cluster.CertificateAuthorityData.Length > 0 ? Decode(cluster.CertificateAuthorityData)
                : cluster.CertificateAuthority.Length > 0 ? Read(cluster.CertificateAuthority) : null;
            if (caPem is not null)
            {
                ca = [];
                ca.ImportFromPem(caPem);
            }
            X509Certificate2? clientCert = null;
            string? token = null;
            if (user is not null)
            {
                var certPem = user.ClientCertificateData.Length > 0 ? Decode(user.ClientCertificateData)
                    : user.ClientCertificate.Length > 0 ? Read(user.ClientCertificate) : null;
                var keyPem = user.ClientKeyData.Length > 0 ? Decode(user.ClientKeyData)
                    : user.ClientKey.Length > 0 ? Read(user.ClientKey) : null;
                if (certPem is not null && keyPem is not null)
                {
                    using var pemCert = X509Certificate2.CreateFromPem(certPem, keyPem);
                    // SslStream needs a key it can use on every platform: round-trip through PKCS#12.
                    clientCert = X509CertificateLoader.LoadPkcs12(pemCert.Export(X509ContentType.Pkcs12), null);
                }
                else if (certPem is not null || keyPem is not null)
                {
                    throw new InvalidOperationException($"{Path}: user \"{user.Name}\" needs both a client certificate and a client key");
                }
                token = user.Token.Length > 0 ? user.Token : user.TokenFile.Length > 0 ? Read(user.TokenFile).Trim() : null;
            }
            return new KubeconfigEndpoint(server, ca, clientCert, token, cluster.InsecureSkipTlsVerify,
                cluster.TlsServerName.Length > 0 ? cluster.TlsServerName : null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or CryptographicException or ArgumentException)
        {
            throw new InvalidOperationException($"{Path}: cannot read the credentials or CA: {ex.Message}", ex);
        }
    }

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
