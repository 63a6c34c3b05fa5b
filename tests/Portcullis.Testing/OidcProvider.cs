using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Portcullis.Testing;

/// <summary>
/// The npm <c>oidc-provider</c> (tests/oidc-provider/provider.mjs) under node on a free loopback port, over HTTPS with a
/// test CA written to <see cref="CaFile"/> (kube-apiserver accepts only https issuers). Used by the authentication
/// tests (as a class fixture, <see cref="OidcProviderFixture"/>) and the end-to-end tests.
/// </summary>
public sealed class OidcProvider : IAsyncDisposable
{
    public const string ClientId = "portcullis-test";
    public const string DefaultAudience = "https://portcullis.test";
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly HttpClient _http;

    private OidcProvider(Process process, HttpClient http, string issuer, string caFile)
    {
        _process = process;
        _http = http;
        Issuer = issuer;
        CaFile = caFile;
    }

    public string Issuer { get; }
    public string CaFile { get; }

    /// <summary>Why the provider cannot run here (no node, or <c>npm ci</c> not run in tests/oidc-provider), or null.</summary>
    public static string? UnavailableReason
    {
        get
        {
            var dir = ProviderDirectory();
            if (dir is null)
            {
                return "tests/oidc-provider/provider.mjs not found above the test output directory";
            }
            if (!Directory.Exists(Path.Combine(dir, "node_modules", "oidc-provider")))
            {
                return $"npm package oidc-provider is not installed: run 'npm ci' in {dir}";
            }
            return FindNode() is null ? "node is not on PATH" : null;
        }
    }

    /// <summary>Writes a CA and a 127.0.0.1 server certificate into <paramref name="directory"/> and starts the provider.</summary>
    public static async Task<OidcProvider> StartAsync(string directory)
    {
        using var ca = TestPki.CreateCa("oidc-test-ca");
        using var server = TestPki.CreateServer(ca);
        var caFile = Path.Combine(directory, "oidc-ca.crt");
        File.WriteAllText(caFile, ca.ExportCertificatePem() + "\n");
        var certFile = Path.Combine(directory, "oidc-server.crt");
        var keyFile = Path.Combine(directory, "oidc-server.key");
        File.WriteAllText(certFile, server.ExportCertificatePem());
        File.WriteAllText(keyFile, server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

        var start = new ProcessStartInfo(FindNode()!, "provider.mjs")
        {
            WorkingDirectory = ProviderDirectory()!,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["PORT"] = "0";
        start.Environment["CERT_FILE"] = certFile;
        start.Environment["KEY_FILE"] = keyFile;
        start.Environment["AUDIENCE"] = DefaultAudience;
        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        string issuer;
        try
        {
            while (true)
            {
                var line = await process.StandardOutput.ReadLineAsync().WaitAsync(Timeout)
                    ?? throw new InvalidOperationException("oidc provider exited before listening");
                if (line.StartsWith("LISTENING ", StringComparison.Ordinal))
                {
                    issuer = "https://127.0.0.1:" + line["LISTENING ".Length..].Trim();
                    break;
                }
            }
        }
        catch
        {
            process.Kill();
            process.Dispose();
            throw;
        }
        var trusted = X509CertificateLoader.LoadCertificate(ca.RawData);
        var handler = new SocketsHttpHandler { UseProxy = false };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(trusted);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            using var leaf = cert is null ? null : X509CertificateLoader.LoadCertificate(cert.GetRawCertData());
            return leaf is not null && chain.Build(leaf);
        };
        return new OidcProvider(process, new HttpClient(handler) { Timeout = Timeout }, issuer, caFile);
    }

    /// <summary>A JWT access token by client_credentials; <paramref name="resource"/> becomes its aud.</summary>
    public async Task<string> GetTokenAsync(string? resource = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "api" };
        if (resource is not null)
        {
            form["resource"] = resource;
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, Issuer + "/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String("portcullis-test:secret"u8));
        using var response = await _http.SendAsync(request).WaitAsync(Timeout);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Timeout);
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>Sets the lifetime of the access tokens issued from now on.</summary>
    public async Task SetTokenLifetimeAsync(int seconds)
    {
        using var response = await _http.PostAsync(Issuer + "/admin/ttl?seconds=" + seconds.ToString(CultureInfo.InvariantCulture), null).WaitAsync(Timeout);
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Replaces the signing key (new kid; the old key leaves the JWKS) without changing the issuer.</summary>
    public async Task<string> RotateKeysAsync()
    {
        using var response = await _http.PostAsync(Issuer + "/admin/rotate", null).WaitAsync(Timeout);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Timeout)).GetProperty("kid").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        _process.StandardInput.Close(); // provider.mjs exits when its stdin ends
        try
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            _process.Kill();
        }
        _process.Dispose();
    }

    private static string? ProviderDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "oidc-provider");
            if (File.Exists(Path.Combine(candidate, "provider.mjs")))
            {
                return candidate;
            }
        }
        return null;
    }

    private static string? FindNode() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(p => Path.Combine(p, "node")).FirstOrDefault(File.Exists);
}

/// <summary>A fact that needs kubectl, node and the npm oidc-provider; skipped, with the reason shown, when one is missing.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class OidcKubectlFactAttribute : FactAttribute
{
    public OidcKubectlFactAttribute()
    {
        if (Kubectl.Path is null)
        {
            Skip = "kubectl is not on PATH; the real-client end-to-end tests need it (CI has it)";
        }
        else if (OidcProvider.UnavailableReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A fact that needs node and the npm oidc-provider; skipped, with the reason shown, when one is missing.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class OidcProviderFactAttribute : FactAttribute
{
    public OidcProviderFactAttribute()
    {
        if (OidcProvider.UnavailableReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// One <see cref="OidcProvider"/> per test class (<c>IClassFixture&lt;OidcProviderFixture&gt;</c>), its files in a fresh
/// <see cref="Directory"/>; it is not started where <see cref="OidcProvider.UnavailableReason"/> says it cannot run (the
/// tests are then skipped by <see cref="OidcProviderFactAttribute"/>).
/// </summary>
public sealed class OidcProviderFixture : IAsyncLifetime
{
    private OidcProvider? _provider;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("portcullis-oidc-").FullName;

    public OidcProvider Provider => _provider ?? throw new InvalidOperationException("the OIDC provider is not running: " + OidcProvider.UnavailableReason);

    public string Issuer => Provider.Issuer;

    public string CaFile => Provider.CaFile;

    public Task<string> GetTokenAsync(string? resource = null) => Provider.GetTokenAsync(resource);

    public Task<string> RotateKeysAsync() => Provider.RotateKeysAsync();

    public async Task InitializeAsync()
    {
        if (OidcProvider.UnavailableReason is null)
        {
            _provider = await OidcProvider.StartAsync(Directory);
        }
    }

    public async Task DisposeAsync()
    {
        if (_provider is not null)
        {
            await _provider.DisposeAsync();
        }
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
