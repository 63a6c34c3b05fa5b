namespace Portcullis.Testing;

/// <summary>
/// The files a webhook-mode gateway configuration names, written into one directory: the serving certificate and key,
/// the CA the API server's client certificate must chain to, a token file, the RBAC manifest granting alice the creation
/// of persistentvolumes (<see cref="AlicePvRbac"/>) and a deny list. The configuration itself stays with each test.
/// </summary>
public static class WebhookFiles
{
    /// <summary>A ClusterRole pv-creator (create persistentvolumes) bound to the user alice.</summary>
    public const string AlicePvRbac = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: pv-creator}
        rules:
        - apiGroups: [""]
          resources: [persistentvolumes]
          verbs: [create]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: alice-pv}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pv-creator}
        subjects:
        - {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
        """;

    /// <summary>
    /// Writes <paramref name="certFile"/>/<paramref name="keyFile"/> (a server certificate from <paramref name="serving"/>),
    /// <paramref name="clientCAFile"/> (<paramref name="clientCaPem"/>), tokens.csv, rbac.yaml (<see cref="AlicePvRbac"/>)
    /// and deny.yaml into <paramref name="dir"/>.
    /// </summary>
    public static void Write(string dir, TestPki serving, string clientCaPem, string tokensCsv, string denyList,
        string certFile = "server.crt", string keyFile = "server.key", string clientCAFile = "client-ca.crt")
    {
        ArgumentNullException.ThrowIfNull(serving);
        TestPki.WritePem(serving.IssueServer(), Path.Combine(dir, certFile), Path.Combine(dir, keyFile));
        File.WriteAllText(Path.Combine(dir, clientCAFile), clientCaPem);
        File.WriteAllText(Path.Combine(dir, "tokens.csv"), tokensCsv);
        File.WriteAllText(Path.Combine(dir, "rbac.yaml"), AlicePvRbac);
        File.WriteAllText(Path.Combine(dir, "deny.yaml"), denyList);
    }
}
