using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Portcullis.Gateway.Hosting;

namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>
/// A real gateway on 127.0.0.1:0 in front of a <see cref="RecordingUpstream"/>, with a PKI and config files written to a
/// temp folder. <c>configure</c> receives the YAML sections to merge into the configuration.
/// </summary>
public sealed class GatewayTestHost : IAsyncDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("portcullis-gw-").FullName;
    public TestPki Pki { get; } = new("portcullis-test-ca");
    public TestPki OtherPki { get; } = new("intruder-ca");
    public RecordingUpstream Upstream { get; private set; } = null!;
    /// <summary>The raw-bytes upstream, when the host was started with <c>rawUpstream: true</c> (then <see cref="Upstream"/> is null).</summary>
    public RawUpstream Raw { get; private set; } = null!;
    public GatewayHost Host { get; private set; } = null!;
    public Uri Uri => Host.ListenUris[0];
    public Uri AdminUri => Host.AdminUri!;
    public string ConfigPath => Path.Combine(Dir, "portcullis.yaml");
    private string DenyListLine { get; set; } = "";
    private string RevocationLine { get; set; } = "";
    /// <summary>One more line of the <c>tls</c> section of every configuration this host writes (e.g. <c>handshakeTimeout: 2s</c>).</summary>
    private string TlsExtra { get; set; } = "";
    private string RbacManifests { get; set; } = "[rbac.yaml]";

    public static async Task<GatewayTestHost> StartAsync(string extraYaml = "", string identity = "Impersonate", string modes = "[AlwaysAllow]", bool upstreamDown = false, string anonymous = "{enabled: false}", string? denyList = null, Dictionary<string, string>? files = null, string rbacManifests = "[rbac.yaml]", bool rawUpstream = false, string upstreamClusterExtra = "", string upstreamDnsName = "localhost", string requestTimeout = "2s", string? revocationList = null, string tlsExtra = "", TimeProvider? time = null)
    {
        var t = new GatewayTestHost { RbacManifests = rbacManifests, RequestTimeout = requestTimeout, TlsExtra = tlsExtra };
        var upstreamServer = t.Pki.IssueServer(upstreamDnsName);
        var gatewayClient = t.Pki.IssueClient("portcullis-gateway", "portcullis:gateways");
        Uri server;
        if (rawUpstream)
        {
            t.Raw = RawUpstream.Start(upstreamServer, t.Pki.Certificate);
            server = t.Raw.Uri;
        }
        else
        {
            t.Upstream = await RecordingUpstream.StartAsync(upstreamServer, t.Pki.Certificate);
            server = upstreamDown ? ClosedPortUri() : t.Upstream.Uri;
        }
        TestPki.WritePem(t.Pki.IssueServer(), Path.Combine(t.Dir, "server.crt"), Path.Combine(t.Dir, "server.key"));
        TestPki.WritePem(gatewayClient, Path.Combine(t.Dir, "gateway.crt"), Path.Combine(t.Dir, "gateway.key"));
        File.WriteAllText(Path.Combine(t.Dir, "ca.crt"), t.Pki.CertificatePem);
        File.WriteAllText(Path.Combine(t.Dir, "rbac.yaml"), RbacYaml);
        File.WriteAllText(Path.Combine(t.Dir, "tokens.csv"), "token-jane,jane,u-1,\"developers,qa\"\ntoken-root,root,u-0,system:masters\n");
        File.WriteAllText(Path.Combine(t.Dir, "upstream.kubeconfig"), $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: upstream
              cluster:
                server: {server}
                certificate-authority: ca.crt
                {upstreamClusterExtra}
            users:
            - name: gateway
              user:
                client-certificate: gateway.crt
                client-key: gateway.key
            contexts:
            - name: upstream
              context: {"{"}cluster: upstream, user: gateway{"}"}
            current-context: upstream
            """);
        foreach (var (name, text) in files ?? [])
        {
            var path = Path.Combine(t.Dir, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, text);
        }
        if (denyList is not null)
        {
            File.WriteAllText(Path.Combine(t.Dir, "deny.yaml"), denyList);
            t.DenyListLine = "denyListFile: deny.yaml";
        }
        if (revocationList is not null)
        {
            File.WriteAllText(Path.Combine(t.Dir, "revoked.yaml"), revocationList);
            t.RevocationLine = "revocationFile: revoked.yaml";
        }
        t.WriteConfig(extraYaml, identity, modes, anonymous);
        t.Host = GatewayHost.Create(t.ConfigPath, new GatewayHostOptions
        {
            ListenOverride = "127.0.0.1:0",
            AdminOverride = "127.0.0.1:0",
            MinimumLogLevel = LogLevel.Warning,
            ReloadDelay = TimeSpan.FromMilliseconds(100),
            ReloadPollInterval = TimeSpan.FromMilliseconds(200),
            UpstreamProbeInterval = TimeSpan.FromMilliseconds(200),
            Time = time ?? TimeProvider.System,
        });
        await t.Host.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return t;
    }

    /// <summary><c>upstream.requestTimeout</c> of every configuration this host writes (2s unless a test needs room).</summary>
    public string RequestTimeout { get; private init; } = "2s";

    public void WriteConfig(string extraYaml = "", string identity = "Impersonate", string modes = "[AlwaysAllow]", string anonymous = "{enabled: false}")
    {
        // Manifests without the RBAC mode would be refused at load ("has no effect"), so they are named only with it.
        var rbac = modes.Contains("RBAC", StringComparison.Ordinal) ? $"rbac: {{manifests: {RbacManifests}}}" : "";
        var yaml = $"""
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            tls:
              certFile: server.crt
              keyFile: server.key
              clientCAFile: ca.crt
              {RevocationLine}
              {TlsExtra}
            authentication:
              tokenAuthFile: tokens.csv
              anonymous: {anonymous}
            authorization:
              modes: {modes}
              {DenyListLine}
              {rbac}
            upstream:
              kubeconfig: upstream.kubeconfig
              identity: {identity}
              requestTimeout: {RequestTimeout}
            admin:
              drainTimeout: 10s
            {extraYaml}
            """;
        File.WriteAllText(ConfigPath, yaml);
    }

    /// <summary>Group developers may read and write pods and configmaps everywhere; nobody but system:masters may impersonate.</summary>
    public const string RbacYaml = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: developer}
        rules:
        - apiGroups: [""]
          resources: [pods, pods/log, pods/exec, configmaps]
          verbs: [get, list, watch, create, update, patch, delete]
        - nonResourceURLs: ["/redirect", "/slow"]
          verbs: [get]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: developers}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: developer}
        subjects:
        - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}
        """;

    private static Uri ClosedPortUri()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"https://127.0.0.1:{port}");
    }

    /// <summary>An HTTPS client trusting the test CA, optionally with a client certificate and a local source address.</summary>
    /// <param name="hostName">Reach the gateway by this name (the connection still goes to its loopback address), as
    /// curl's <c>--connect-to</c> does: the request's Host / :authority is that name.</param>
    public HttpClient Client(X509Certificate2? clientCertificate = null, IPAddress? localAddress = null, Version? version = null, string? hostName = null)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && ValidateServer(cert),
                ClientCertificates = clientCertificate is null ? null : [clientCertificate],
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
            },
        };
        if (localAddress is not null || hostName is not null)
        {
            var target = new IPEndPoint(IPAddress.Parse(Uri.Host), Uri.Port);
            handler.ConnectCallback = async (ctx, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(localAddress ?? IPAddress.Any, 0));
                await socket.ConnectAsync(target, ct);
                return new NetworkStream(socket, ownsSocket: true);
            };
        }
        return new HttpClient(handler)
        {
            BaseAddress = hostName is null ? Uri : new Uri($"https://{hostName}:{Uri.Port}"),
            Timeout = TimeSpan.FromSeconds(20),
            DefaultRequestVersion = version ?? HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    /// <summary>
    /// Points the running gateway at another upstream (a stand-in that misbehaves at a chosen moment) by rewriting its
    /// kubeconfig and reloading; for a host started with <c>rawUpstream: true</c>.
    /// </summary>
    public void RetargetUpstream(Uri upstream)
    {
        var path = Path.Combine(Dir, "upstream.kubeconfig");
        File.WriteAllText(path, File.ReadAllText(path).Replace(Raw.Uri.ToString(), upstream.ToString(), StringComparison.Ordinal));
        Assert.Empty(Host.Snapshots.Reload());
    }

    public bool ValidateServer(X509Certificate cert)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Pki.Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(new X509Certificate2(cert));
    }

    public async ValueTask DisposeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }
        if (Upstream is not null)
        {
            await Upstream.DisposeAsync();
        }
        if (Raw is not null)
        {
            await Raw.DisposeAsync();
        }
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
