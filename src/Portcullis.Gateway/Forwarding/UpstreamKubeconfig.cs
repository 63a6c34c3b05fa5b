using System.Security.Cryptography.X509Certificates;
using Portcullis.Configuration;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Gateway.Forwarding;

/// <summary>The parts of <c>upstream.kubeconfig</c> the gateway uses: server, CA, and its own client certificate or token.</summary>
internal sealed class UpstreamKubeconfig
{
    public required Uri Server { get; init; }
    public X509Certificate2Collection? CertificateAuthority { get; init; }
    public bool InsecureSkipTlsVerify { get; init; }
    public X509Certificate2? ClientCertificate { get; init; }
    public string? Token { get; init; }

    /// <summary>Reads the kubeconfig; errors are added to <paramref name="errors"/> naming the file and field.</summary>
    public static UpstreamKubeconfig? Load(string path, string contextName, List<ConfigError> errors)
    {
        var baseDir = Path.GetDirectoryName(path) ?? ".";
        YamlMappingNode root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(File.ReadAllText(path)));
            root = stream.Documents.Count == 1 && stream.Documents[0].RootNode is YamlMappingNode m
                ? m : throw new InvalidDataException("expected one YAML mapping");
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or YamlDotNet.Core.YamlException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError(path, 0, "(kubeconfig)", $"cannot read kubeconfig: {ex.Message}"));
            return null;
        }

        var context = contextName.Length > 0 ? contextName : Scalar(root, "current-context");
        if (string.IsNullOrEmpty(context))
        {
            errors.Add(new ConfigError(path, 0, "current-context", "no context selected: set current-context or upstream.context"));
            return null;
        }
        var ctx = Named(root, "contexts", context, "context");
        if (ctx is null)
        {
            errors.Add(new ConfigError(path, 0, "contexts", $"context \"{context}\" not found"));
            return null;
        }
        var cluster = Named(root, "clusters", Scalar(ctx, "cluster") ?? "", "cluster");
        if (cluster is null || !Uri.TryCreate(Scalar(cluster, "server"), UriKind.Absolute, out var server) || server.Scheme != Uri.UriSchemeHttps)
        {
            errors.Add(new ConfigError(path, cluster is null ? 0 : (int)cluster.Start.Line, "clusters[].cluster.server",
                $"context \"{context}\" needs a cluster with an https:// server"));
            return null;
        }
        var user = Named(root, "users", Scalar(ctx, "user") ?? "", "user");

        X509Certificate2Collection? ca = null;
        try
        {
            var caPem = Pem(cluster, "certificate-authority", baseDir);
            if (caPem is not null)
            {
                ca = [];
                ca.ImportFromPem(caPem);
            }
            X509Certificate2? clientCert = null;
            string? token = null;
            if (user is not null)
            {
                var certPem = Pem(user, "client-certificate", baseDir);
                var keyPem = Pem(user, "client-key", baseDir);
                if (certPem is not null && keyPem is not null)
                {
                    using var pemCert = X509Certificate2.CreateFromPem(certPem, keyPem);
                    // Re-import so the private key is usable by SslStream on every platform.
                    clientCert = X509CertificateLoader.LoadPkcs12(pemCert.Export(X509ContentType.Pkcs12), null);
                }
                token = Scalar(user, "token");
                var tokenFile = Scalar(user, "tokenFile");
                if (token is null && tokenFile is not null)
                {
                    token = File.ReadAllText(Resolve(baseDir, tokenFile)).Trim();
                }
            }
            return new UpstreamKubeconfig
            {
                Server = server,
                CertificateAuthority = ca,
                InsecureSkipTlsVerify = string.Equals(Scalar(cluster, "insecure-skip-tls-verify"), "true", StringComparison.OrdinalIgnoreCase),
                ClientCertificate = clientCert,
                Token = token,
            };
        }
        catch (Exception ex) when (ex is IOException or System.Security.Cryptography.CryptographicException or FormatException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError(path, 0, "(kubeconfig)", $"cannot load the certificates or token it names: {ex.Message}"));
            return null;
        }
    }

    private static string Resolve(string baseDir, string p) => Path.IsPathRooted(p) ? p : Path.Combine(baseDir, p);

    private static string? Pem(YamlMappingNode node, string field, string baseDir)
    {
        var data = Scalar(node, field + "-data");
        if (data is not null)
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(data));
        }
        var file = Scalar(node, field);
        return file is null ? null : File.ReadAllText(Resolve(baseDir, file));
    }

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value : null;

    private static YamlMappingNode? Named(YamlMappingNode root, string listKey, string name, string innerKey)
    {
        if (!root.Children.TryGetValue(new YamlScalarNode(listKey), out var list) || list is not YamlSequenceNode seq)
        {
            return null;
        }
        foreach (var item in seq.Children.OfType<YamlMappingNode>())
        {
            if (Scalar(item, "name") == name && item.Children.TryGetValue(new YamlScalarNode(innerKey), out var inner))
            {
                return inner as YamlMappingNode;
            }
        }
        return null;
    }
}
