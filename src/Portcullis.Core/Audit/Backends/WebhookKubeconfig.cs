using System.Security.Cryptography.X509Certificates;
using Portcullis.Configuration;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Audit;

/// <summary>
/// The few kubeconfig fields an audit webhook needs (server, CA, client certificate and key, bearer token), read from
/// the current context or the first cluster and user. Private to the audit backends; credentials never reach a message.
/// </summary>
internal sealed class WebhookKubeconfig
{
    public required Uri Server { get; init; }
    public X509Certificate2Collection? CertificateAuthority { get; init; }
    public bool InsecureSkipTlsVerify { get; init; }
    public X509Certificate2? ClientCertificate { get; init; }
    public string? Token { get; init; }

    public static WebhookKubeconfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException([new ConfigError(path, 0, "(file)", $"cannot read audit webhook kubeconfig: {ex.Message}")]);
        }
        var errors = new List<ConfigError>();
        var result = Parse(text, path, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".", errors);
        return errors.Count > 0 || result is null ? throw new ConfigurationException(errors) : result;
    }

    public static WebhookKubeconfig? Parse(string text, string file, string baseDirectory, List<ConfigError> errors)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            errors.Add(new ConfigError(file, (int)ex.Start.Line, "(yaml)", ex.Message));
            return null;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            errors.Add(new ConfigError(file, 0, "(document)", "must be a kubeconfig (apiVersion: v1, kind: Config)"));
            return null;
        }
        var currentContext = ScalarAt(root, "current-context");
        string? clusterName = null, userName = null;
        if (!string.IsNullOrEmpty(currentContext))
        {
            var context = Named(root, "contexts", currentContext, "context");
            if (context is null)
            {
                errors.Add(new ConfigError(file, (int)root.Start.Line, "current-context", $"context \"{currentContext}\" is not defined"));
                return null;
            }
            clusterName = ScalarAt(context, "cluster");
            userName = ScalarAt(context, "user");
        }
        var cluster = clusterName is null ? First(root, "clusters", "cluster") : Named(root, "clusters", clusterName, "cluster");
        if (cluster is null)
        {
            errors.Add(new ConfigError(file, (int)root.Start.Line, "clusters", "no cluster found; the audit webhook needs clusters[].cluster.server"));
            return null;
        }
        var user = userName is null ? First(root, "users", "user") : Named(root, "users", userName, "user");

        var server = ScalarAt(cluster, "server");
        if (string.IsNullOrEmpty(server) || !Uri.TryCreate(server, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
        {
            errors.Add(new ConfigError(file, (int)cluster.Start.Line, "cluster.server", $"\"{server}\" must be an absolute http(s) URL"));
            return null;
        }
        try
        {
            X509Certificate2Collection? ca = null;
            var caData = ScalarAt(cluster, "certificate-authority-data");
            var caFile = ScalarAt(cluster, "certificate-authority");
            if (!string.IsNullOrEmpty(caData))
            {
                ca = [];
                ca.ImportFromPem(System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(caData)));
            }
            else if (!string.IsNullOrEmpty(caFile))
            {
                ca = [];
                ca.ImportFromPemFile(Resolve(baseDirectory, caFile));
            }
            X509Certificate2? client = null;
            string? token = null;
            if (user is not null)
            {
                foreach (var plugin in new[] { "auth-provider", "exec" })
                {
                    if (user.Children.ContainsKey(new YamlScalarNode(plugin)))
                    {
                        errors.Add(new ConfigError(file, (int)user.Start.Line, "user." + plugin,
                            $"credential plugins ({plugin}) are not supported for the audit webhook; use token, tokenFile or client-certificate/client-key"));
                        return null;
                    }
                }
                var certData = ScalarAt(user, "client-certificate-data");
                var keyData = ScalarAt(user, "client-key-data");
                var certFile = ScalarAt(user, "client-certificate");
                var keyFile = ScalarAt(user, "client-key");
                var certPem = !string.IsNullOrEmpty(certData) ? FromBase64(certData)
                    : !string.IsNullOrEmpty(certFile) ? File.ReadAllText(Resolve(baseDirectory, certFile)) : null;
                var keyPem = !string.IsNullOrEmpty(keyData) ? FromBase64(keyData)
                    : !string.IsNullOrEmpty(keyFile) ? File.ReadAllText(Resolve(baseDirectory, keyFile)) : null;
                if (certPem is not null && keyPem is not null)
                {
                    using var pem = X509Certificate2.CreateFromPem(certPem, keyPem);
                    // Re-import so the private key is usable by SslStream on every platform.
                    client = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
                }
                else if (certPem is not null || keyPem is not null)
                {
                    errors.Add(new ConfigError(file, (int)user.Start.Line, "user", "client-certificate and client-key must be given together"));
                }
                token = ScalarAt(user, "token");
                var tokenFile = ScalarAt(user, "tokenFile");
                if (string.IsNullOrEmpty(token) && !string.IsNullOrEmpty(tokenFile))
                {
                    token = File.ReadAllText(Resolve(baseDirectory, tokenFile)).Trim();
                }
            }
            return new WebhookKubeconfig
            {
                Server = uri,
                CertificateAuthority = ca,
                InsecureSkipTlsVerify = ScalarAt(cluster, "insecure-skip-tls-verify") == "true",
                ClientCertificate = client,
                Token = string.IsNullOrEmpty(token) ? null : token,
            };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException
            or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            // The exception type and message describe the file or format problem, never the secret itself.
            errors.Add(new ConfigError(file, (int)cluster.Start.Line, "(credentials)", $"cannot load certificates or token: {ex.GetType().Name}: {ex.Message}"));
            return null;
        }
    }

    private static string FromBase64(string data) => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(data));

    private static string Resolve(string baseDirectory, string path) =>
        System.IO.Path.IsPathRooted(path) ? path : System.IO.Path.Combine(baseDirectory, path);

    private static string? ScalarAt(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode s ? s.Value : null;

    private static YamlMappingNode? First(YamlMappingNode root, string list, string inner) =>
        root.Children.TryGetValue(new YamlScalarNode(list), out var node) && node is YamlSequenceNode { Children.Count: > 0 } seq
        && seq.Children[0] is YamlMappingNode item && item.Children.TryGetValue(new YamlScalarNode(inner), out var value)
            ? value as YamlMappingNode
            : null;

    private static YamlMappingNode? Named(YamlMappingNode root, string list, string name, string inner)
    {
        if (!root.Children.TryGetValue(new YamlScalarNode(list), out var node) || node is not YamlSequenceNode seq)
        {
            return null;
        }
        foreach (var item in seq.Children)
        {
            if (item is YamlMappingNode map && ScalarAt(map, "name") == name
                && map.Children.TryGetValue(new YamlScalarNode(inner), out var value))
            {
                return value as YamlMappingNode;
            }
        }
        return null;
    }
}
