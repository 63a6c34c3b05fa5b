using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using k8s;

namespace Portcullis.EndToEnd.Tests.Infrastructure;

/// <summary>One demo process shared by the tests of the "demo" collection; each test names its own objects.</summary>
public sealed class DemoFixture : IAsyncLifetime
{
    private DemoProcess? _demo;

    public DemoProcess Demo => _demo ?? throw new InvalidOperationException("the demo has not started");

    /// <summary>The helpers below for a demo a test started itself (the caller disposes the demo, not this fixture).</summary>
    public static DemoFixture For(DemoProcess demo) => new() { _demo = demo };

    public async Task InitializeAsync() => _demo = await DemoProcess.StartAsync();

    public async Task DisposeAsync()
    {
        if (_demo is not null)
        {
            await _demo.DisposeAsync();
        }
    }

    /// <summary>A KubernetesClient for one of the demo's kubeconfigs.</summary>
    public Kubernetes KubernetesClient(string user) =>
        new(KubernetesClientConfiguration.BuildConfigFromConfigFile(Demo.Kubeconfig(user)));

    /// <summary>An HttpClient to the gateway that trusts only the demo CA and presents <paramref name="user"/>'s certificate (or none).</summary>
    public HttpClient Http(string? user) => new(Handler(user)) { BaseAddress = Demo.Gateway, Timeout = TimeSpan.FromSeconds(30) };

    public SocketsHttpHandler Handler(string? user)
    {
        var ca = X509CertificateLoader.LoadCertificateFromFile(Demo.Pki("ca.crt"));
        var ssl = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && ChainsTo(certificate, ca),
        };
        if (user is not null)
        {
            ssl.ClientCertificates = [LoadClientCertificate(user)];
        }
        return new SocketsHttpHandler { SslOptions = ssl, PooledConnectionLifetime = TimeSpan.FromMinutes(1) };
    }

    public X509Certificate2 LoadClientCertificate(string user)
    {
        using var pem = X509Certificate2.CreateFromPemFile(Demo.Pki(user + ".crt"), Demo.Pki(user + ".key"));
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    public static bool ChainsTo(X509Certificate certificate, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }
}

[CollectionDefinition(Name)]
public sealed class DemoCollection : ICollectionFixture<DemoFixture>
{
    public const string Name = "demo";
}
