using System.Security.Cryptography.X509Certificates;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Authentication.Webhook;

/// <summary>
/// The part of a kubeconfig that a token webhook uses (current context's cluster server and CA, user client cert/key
/// or token). Kept private to the webhook so it does not clash with the general Kubeconfig reader of another branch;
/// relative paths resolve against the kubeconfig's directory, as client-go does.
/// </summary>
internal sealed class WebhookKubeconfig
{
    public required Uri Server { get; init; }
    public X509Certificate2Collection? CertificateAuthority { get; init; }
    public bool InsecureSkipTlsVerify { get; init; }
    public X509Certificate2? ClientCertificate { get; init; }
    public string? BearerToken { get; init; }

    public static WebhookKubeconfig Load(string path)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(path)));
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new FormatException($"{path}: not a kubeconfig (expected a mapping)");
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var contextName = Scalar(root, "current-context");
        var contexts = Named(root, "contexts", "context");
        var clusters = Named(root, "clusters", "cluster");
        var users = Named(root, "users", "user");
        YamlMappingNode? cluster;
        YamlMappingNode? user = null;
        if (!string.IsNullOrEmpty(contextName))
        {
            if (!contexts.TryGetValue(contextName, out var context))
            {
                throw new FormatException($"{path}: current-context \"{contextName}\" is not in contexts");
            }
            var clusterName = Scalar(context, "cluster") ?? "";
            if (!clusters.TryGetValue(clusterName, out cluster))
            {
                throw new FormatException($"{path}: context \"{contextName}\" names cluster \"{clusterName}\", which is not in clusters");
            }
            var userName = Scalar(context, "user");
            if (!string.IsNullOrEmpty(userName) && !users.TryGetValue(userName, out user))
            {
                throw new FormatException($"{path}: context \"{contextName}\" names user \"{userName}\", which is not in users");
            }
        }
        else if (clusters.Count == 1)
        {
            cluster = clusters.Values.Single();
            user = users.Count == 1 ? users.Values.Single() : null;
        }
        else
        {
            throw new FormatException($"{path}: no current-context and not exactly one cluster");
        }

        var server = Scalar(cluster, "server");
        if (!Uri.TryCreate(server, UriKind.Absolute, out var serverUri) || (serverUri.Scheme != Uri.UriSchemeHttps && serverUri.Scheme != Uri.UriSchemeHttp))
        {
            throw new FormatException($"{path}: cluster server \"{server}\" is not an http(s) URL");
        }
        X509Certificate2Collection? ca = null;
        var caPem = ReadData(cluster, "certificate-authority", dir, path);
        if (caPem is not null)
        {
            ca = [];
            ca.ImportFromPem(caPem);
            if (ca.Count == 0)
            {
                throw new FormatException($"{path}: certificate-authority holds no PEM certificate");
            }
        }
        X509Certificate2? clientCert = null;
        string? token = null;
        if (user is not null)
        {
            if (user.Children.ContainsKey(new YamlScalarNode("auth-provider")) || user.Children.ContainsKey(new YamlScalarNode("exec")))
            {
                throw new FormatException($"{path}: user auth-provider/exec plugins are not supported for webhooks; use a client certificate or token");
            }
            var certPem = ReadData(user, "client-certificate", dir, path);
            var keyPem = ReadData(user, "client-key", dir, path);
            if (certPem is not null && keyPem is not null)
            {
                using var pemCert = X509Certificate2.CreateFromPem(certPem, keyPem);
                // Re-import so the private key is usable for TLS client authentication on every platform.
                clientCert = X509CertificateLoader.LoadPkcs12(pemCert.Export(X509ContentType.Pkcs12), null);
            }
            else if (certPem is not null || keyPem is not null)
            {
                throw new FormatException($"{path}: client-certificate and client-key must be given together");
            }
            token = Scalar(user, "token");
            if (Scalar(user, "tokenFile") is { Length: > 0 } tokenFile)
            {
                token = File.ReadAllText(Resolve(dir, tokenFile)).Trim();
            }
        }
        return new WebhookKubeconfig
        {
            Server = serverUri,
            CertificateAuthority = ca,
            InsecureSkipTlsVerify = Scalar(cluster, "insecure-skip-tls-verify") == "true",
            ClientCertificate = clientCert,
            BearerToken = string.IsNullOrEmpty(token) ? null : token,
        };
    }

    private static string? ReadData(YamlMappingNode node, string field, string dir, string path)
    {
        if (Scalar(node, field + "-data") is { Length: > 0 } data)
        {
            try
            {
                return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(data));
            }
            catch (FormatException)
            {
                throw new FormatException($"{path}: {field}-data is not base64");
            }
        }
        if (Scalar(node, field) is { Length: > 0 } file)
        {
            var full = Resolve(dir, file);
            if (!File.Exists(full))
            {
                throw new FormatException($"{path}: {field} file \"{full}\" does not exist");
            }
            return File.ReadAllText(full);
        }
        return null;
    }

    private static string Resolve(string dir, string file) => Path.GetFullPath(Path.IsPathRooted(file) ? file : Path.Combine(dir, file));

    private static Dictionary<string, YamlMappingNode> Named(YamlMappingNode root, string list, string inner)
    {
        var result = new Dictionary<string, YamlMappingNode>(StringComparer.Ordinal);
        if (root.Children.TryGetValue(new YamlScalarNode(list), out var node) && node is YamlSequenceNode seq)
        {
            foreach (var item in seq.Children.OfType<YamlMappingNode>())
            {
                var name = Scalar(item, "name") ?? "";
                if (item.Children.TryGetValue(new YamlScalarNode(inner), out var body) && body is YamlMappingNode map)
                {
                    result[name] = map;
                }
                else
                {
                    result[name] = new YamlMappingNode();
                }
            }
        }
        return result;
    }

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value : null;
}
