using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Configuration;
using Portcullis.Kubeconfig;
using Portcullis.Tls;
using R = Portcullis.Check.Rules.RuleCatalog;

namespace Portcullis.Check.Rules;

/// <summary>
/// <c>PC-L2-CERT-LIFETIME</c>: the lifetime (NotAfter − NotBefore) of every client certificate the configuration names —
/// a certificate file given by a flag, or a kubeconfig's <c>client-certificate-data</c> / <c>client-certificate</c> —
/// PASS up to the limit, WARN above it. A file that cannot be read is left to the rules that name it.
/// </summary>
internal static class CertificateLifetimes
{
    /// <summary>The limit without a configured one: kubeadm's one-year client certificates pass, anything longer is flagged.</summary>
    public static readonly TimeSpan DefaultLimit = TimeSpan.FromDays(365);

    public const string DefaultLimitSource = "the default limit";

    /// <summary>Scores the leaf (first) certificate of a PEM file named by <paramref name="shown"/> (e.g. <c>--etcd-certfile=…</c>).</summary>
    public static void ScoreCertificateFile(FindingList f, string shown, ReferencedFile file, TimeSpan limit, string limitSource)
    {
        if (!file.WasRead)
        {
            return;
        }
        var certificate = FirstCertificate(file.Text!);
        if (certificate is null)
        {
            f.Warn(R.ClientCertificateLifetime, $"{shown}: {file.Where} holds no PEM certificate", file.HostPath ?? file.Named);
            return;
        }
        using (certificate)
        {
            Score(f, shown, certificate, limit, limitSource, file.HostPath ?? file.Named);
        }
    }

    /// <summary>Scores the client certificate of every user of a kubeconfig named by <paramref name="shown"/>.</summary>
    public static void ScoreKubeconfig(FindingList f, string shown, ReferencedFile file, TimeSpan limit, string limitSource)
    {
        if (!file.WasRead)
        {
            return;
        }
        var where = file.HostPath ?? file.Named;
        var errors = new List<ConfigError>();
        var kubeconfig = KubeconfigFile.Parse(file.Text!, where, errors);
        if (kubeconfig is null)
        {
            return;
        }
        foreach (var user in kubeconfig.Users)
        {
            var problems = new List<ConfigError>();
            var pem = kubeconfig.ClientCertificatePem(user, problems);
            var userShown = $"{shown} users[{user.Name}]";
            if (problems.Count > 0)
            {
                f.Warn(R.ClientCertificateLifetime, $"{userShown}: the client certificate cannot be read: {string.Join("; ", problems.Select(p => p.Message))}", where);
                continue;
            }
            if (pem is null)
            {
                continue; // a token or plugin user: no certificate to score
            }
            using var certificate = FirstCertificate(pem);
            if (certificate is null)
            {
                f.Warn(R.ClientCertificateLifetime, $"{userShown}: the client certificate is not PEM", where);
                continue;
            }
            Score(f, userShown, certificate, limit, limitSource, where);
        }
    }

    private static void Score(FindingList f, string shown, X509Certificate2 certificate, TimeSpan limit, string limitSource, string location)
    {
        var lifetime = CertificateLifetime.Of(certificate);
        var evidence = string.Create(CultureInfo.InvariantCulture,
            $"{shown}: {Portcullis.Diagnostics.SafeText.Of(certificate.Subject, 128)} valid for {CertificateLifetime.Format(lifetime)} ({certificate.NotBefore.ToUniversalTime():yyyy-MM-dd} to {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd})");
        if (lifetime > limit)
        {
            f.Warn(R.ClientCertificateLifetime, $"{evidence}, longer than {CertificateLifetime.Format(limit)} ({limitSource})", location);
        }
        else
        {
            f.Pass(R.ClientCertificateLifetime, $"{evidence}, within {CertificateLifetime.Format(limit)} ({limitSource})", location);
        }
    }

    private static X509Certificate2? FirstCertificate(string pem)
    {
        try
        {
            return X509Certificate2.CreateFromPem(pem);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }
}
