using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Tests;

/// <summary>Starts a sandbox on 127.0.0.1:0 with the shared test PKI, and makes clients for it.</summary>
public static class TestSandbox
{
    /// <summary>The bound every await in these tests gets.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static Task<SandboxServer> StartAsync(bool seed = true, TimeSpan? logFollowInterval = null) =>
        SandboxServer.StartAsync(new SandboxOptions
        {
            ServerCertificate = SandboxPki.Shared.Server,
            ClientCA = [SandboxPki.Shared.Ca],
            Seed = seed,
            LogFollowInterval = logFollowInterval ?? TimeSpan.FromMilliseconds(50),
        }).WaitAsync(Timeout);

    /// <summary>An HttpClient that presents <paramref name="clientCertificate"/> (alice by default) and trusts only the test CA.</summary>
    public static HttpClient Client(SandboxServer server, X509Certificate2? clientCertificate = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [clientCertificate ?? SandboxPki.Shared.Client],
                RemoteCertificateValidationCallback = (_, certificate, _, _) => TrustsTestCa(certificate),
            },
        };
        var client = new HttpClient(handler) { BaseAddress = server.Uri, Timeout = Timeout };
        client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        return client;
    }

    public static ClientWebSocket WebSocket(string subprotocol)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(subprotocol);
        socket.Options.ClientCertificates = [SandboxPki.Shared.Client];
        socket.Options.RemoteCertificateValidationCallback = (_, certificate, _, _) => TrustsTestCa(certificate);
        return socket;
    }

    public static async Task<JsonObject> GetJsonAsync(this HttpClient client, string path)
    {
        ArgumentNullException.ThrowIfNull(client);
        using var response = await client.GetAsync(path).WaitAsync(Timeout);
        var text = await response.Content.ReadAsStringAsync().WaitAsync(Timeout);
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    public static async Task<(int Status, JsonObject Body)> SendJsonAsync(this HttpClient client, HttpMethod method, string path,
        JsonNode? body = null, string contentType = "application/json")
    {
        ArgumentNullException.ThrowIfNull(client);
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString());
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        }
        using var response = await client.SendAsync(request).WaitAsync(Timeout);
        var text = await response.Content.ReadAsStringAsync().WaitAsync(Timeout);
        return ((int)response.StatusCode, JsonNode.Parse(text)!.AsObject());
    }

    public static IEnumerable<string> Names(JsonObject list) =>
        list["items"]!.AsArray().Select(i => i!["metadata"]!["name"]!.GetValue<string>());

    public static bool TrustsTestCa(X509Certificate? certificate)
    {
        if (certificate is null)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(SandboxPki.Shared.Ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var server = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(server);
    }
}
