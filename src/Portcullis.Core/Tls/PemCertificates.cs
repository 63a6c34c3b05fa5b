using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Tls;

/// <summary>
/// Loads certificates, keys and CA bundles from PEM, the one way every part of Portcullis does it: a certificate with its
/// key comes back with a key SslStream can use on every platform, and a CA bundle must hold at least one certificate.
/// </summary>
public static class PemCertificates
{
    /// <summary>
    /// A copy of <paramref name="certificate"/> whose private key SslStream can use on every platform: a key read from PEM
    /// is ephemeral, which Kestrel and SslStream on Linux and Windows refuse, so it is round-tripped through PKCS#12.
    /// </summary>
    public static X509Certificate2 WithUsableKey(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A certificate and its private key from PEM text (e.g. a kubeconfig's client-certificate-data and client-key-data).</summary>
    public static X509Certificate2 LoadWithKey(string certificatePem, string keyPem)
    {
        using var pem = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        return WithUsableKey(pem);
    }

    /// <summary>A certificate and its private key from two PEM files.</summary>
    public static X509Certificate2 LoadWithKeyFromFiles(string certificatePath, string keyPath)
    {
        using var pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        return WithUsableKey(pem);
    }

    /// <summary>Every certificate of a PEM bundle file (a CA file); <see cref="FormatException"/> when it holds none.</summary>
    public static X509Certificate2Collection LoadBundle(string path)
    {
        var bundle = new X509Certificate2Collection();
        bundle.ImportFromPemFile(path);
        if (bundle.Count == 0)
        {
            throw new FormatException($"{path}: no PEM certificate found");
        }
        return bundle;
    }

    /// <summary>
    /// A serving certificate for a TLS listener: the leaf with its key from <paramref name="certificatePath"/> and
    /// <paramref name="keyPath"/>, and every other certificate of the certificate file sent as its chain.
    /// </summary>
    public static System.Net.Security.SslStreamCertificateContext LoadServingContext(string certificatePath, string keyPath)
    {
        var leaf = LoadWithKeyFromFiles(certificatePath, keyPath);
        var all = new X509Certificate2Collection();
        all.ImportFromPemFile(certificatePath);
        var intermediates = new X509Certificate2Collection();
        foreach (var c in all)
        {
            if (c.Thumbprint != leaf.Thumbprint)
            {
                intermediates.Add(c);
            }
        }
        return System.Net.Security.SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
    }
}
