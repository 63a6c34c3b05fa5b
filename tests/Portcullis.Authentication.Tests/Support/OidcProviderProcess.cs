using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Portcullis.Authentication.Tests.Support;

/// <summary>
/// The npm <c>oidc-provider</c> (tests/oidc-provider/provider.mjs) running under node on a free loopback port, over HTTPS
/// with a test CA (kube-apiserver only accepts https issuers, so the gateway is configured with <c>oidc.caFile</c>).
/// </summary>
public sealed class OidcProviderProcess : IAsyncLifetime
{
    public const string ClientId = "portcullis-test";
    public const string DefaultAudience = "https://portcullis.test";

    private Process? _process;
    private HttpClient? _http;
    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("portcullis-oidc-").FullName;

    public string Issuer { get; private set; } = "";
    public string CaFile => Path.Combine(_dir, "ca.pem");
    public string Directory => _dir;

    /// <summary>Why the provider cannot run here (no node, or <c>npm ci</c> not run), or null.</summary>
    public static string? UnavailableReason
    {
        get
        {
            var dir = ProviderDirectory();
            if (dir is null)
            {
                return "tests/oidc-provider/provider.mjs not found above the test output directory";
            }
            if (!System.IO.Directory.Exists(Path.Combine(dir, "node_modules", "oidc-provider")))
            {
                return $"npm package oidc-provider is not installed: run 'npm ci' in {dir}";
            }
            return FindNode() is null ? "node is not on PATH" : null;
        }
    }

    internal static string? ProviderDirectory()
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

    public async Task InitializeAsync()
    {
        if (UnavailableReason is not null)
        {
            return;
        }
        var ca = TestPki.CreateCa("oidc-test-ca");
        using var server = TestPki.CreateServer(ca);
        File.WriteAllText(CaFile, TestPki.Pem(ca));
        File.WriteAllText(Path.Combine(_dir, "server.crt"), server.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_dir, "server.key"), server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

        var start = new ProcessStartInfo(FindNode()!, "provider.mjs")
        {
            WorkingDirectory = ProviderDirectory()!,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["PORT"] = "0";
        start.Environment["CERT_FILE"] = Path.Combine(_dir, "server.crt");
        start.Environment["KEY_FILE"] = Path.Combine(_dir, "server.key");
        start.Environment["AUDIENCE"] = DefaultAudience;
        _process = Process.Start(start)!;
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        while (true)
        {
            var line = await _process.StandardOutput.ReadLineAsync().WaitAsync(Wait.Timeout)
                ?? throw new InvalidOperationException("oidc provider exited before listening");
            if (line.StartsWith("LISTENING ", StringComparison.Ordinal))
            {
                Issuer = "https://127.0.0.1:" + line["LISTENING ".Length..].Trim();
                break;
            }
        }
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is not null && chain.Build(X509CertificateLoader.LoadCertificate(cert.GetRawCertData()));
        };
        _http = new HttpClient(handler) { Timeout = Wait.Timeout };
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
        using var response = await _http!.SendAsync(request).WaitAsync(Wait.Timeout);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Wait.Timeout);
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>Replaces the provider's signing key (new kid; the old key leaves the JWKS) without changing the issuer.</summary>
    public async Task<string> RotateKeysAsync()
    {
        using var response = await _http!.PostAsync(Issuer + "/admin/rotate", null).WaitAsync(Wait.Timeout);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>().WaitAsync(Wait.Timeout)).GetProperty("kid").GetString()!;
    }

    public async Task DisposeAsync()
    {
        _http?.Dispose();
        if (_process is { } p)
        {
            p.StandardInput.Close(); // provider.mjs exits when its stdin ends
            try
            {
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                p.Kill();
            }
            p.Dispose();
        }
        System.IO.Directory.Delete(_dir, true);
    }
}

/// <summary>A fact that is skipped, with the reason shown, when node or the npm package is missing.</summary>
public sealed class OidcProviderFactAttribute : FactAttribute
{
    public OidcProviderFactAttribute()
    {
        if (OidcProviderProcess.UnavailableReason is { } reason)
        {
            Skip = reason;
        }
    }
}
