using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Check.Tests.Probe;

/// <summary>
/// A CA, a kube-apiserver serving certificate and alice's client certificate for one test, from Portcullis.Testing's
/// <see cref="TestPki"/>; the serving certificate's names and lifetime are what the probe tests vary.
/// </summary>
internal sealed class ProbePki : IDisposable
{
    private readonly TestPki _pki = new("portcullis-test-ca", TimeSpan.FromDays(3 * 365));

    public ProbePki(string[]? serverDnsNames = null, bool serverIp = true, TimeSpan? serverLifetime = null)
    {
        Server = _pki.IssueServer("CN=kube-apiserver", serverDnsNames ?? ["localhost"], serverIp, serverLifetime ?? TimeSpan.FromDays(365));
        Client = TestPki.Issue(Ca, TestPki.Name("alice", "devs"), TestPki.ClientAuthOid, notAfter: DateTimeOffset.UtcNow.AddDays(30));
    }

    public X509Certificate2 Ca => _pki.Certificate;
    public X509Certificate2 Server { get; }
    public X509Certificate2 Client { get; }

    public string CaPem => Ca.ExportCertificatePem();

    public void Dispose()
    {
        _pki.Dispose();
        Server.Dispose();
        Client.Dispose();
    }
}
