using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json.Nodes;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// What the upstream is told about the user (never what the client claims), kube-apiserver's exact 401, and the
/// intruder's failed handshake. Raw HttpClient/SslStream, so that the client can send whatever headers it likes.
/// </summary>
[Collection(DemoCollection.Name)]
public sealed class IdentityAndTlsTests(DemoFixture fixture)
{
    private const string Unauthorized =
        """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}""";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Identity_Headers_Sent_By_Admin_Are_Not_Believed_The_Sandbox_Sees_Admin()
    {
        using var admin = fixture.Http("admin");
        var name = NewName("e2e-xremote");
        using var request = CreateConfigMap(name);
        request.Headers.TryAddWithoutValidation("X-Remote-User", "jane");
        request.Headers.TryAddWithoutValidation("X-Remote-Group", "developers");
        request.Headers.TryAddWithoutValidation("X-Remote-Extra-Scopes", "forged");

        using var response = await admin.SendAsync(request).WaitAsync(Timeout);
        var body = await response.Content.ReadAsStringAsync();
        var recorded = await RecordedAsync(admin, name);
        await admin.DeleteAsync(new Uri($"/api/v1/namespaces/dev/configmaps/{name}", UriKind.Relative));

        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        Assert.Equal("admin", (string?)JsonNode.Parse(body)!["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]);
        Assert.NotNull(recorded);
        Assert.Equal("admin", (string?)recorded["identity"]!["username"]);
        var headers = recorded["headers"]!.AsObject();
        Assert.DoesNotContain(headers, h => h.Key.StartsWith("X-Remote-", StringComparison.OrdinalIgnoreCase));
        var impersonated = headers.Where(h => h.Key.Equals("Impersonate-User", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.Equal("admin", (string?)Assert.Single(impersonated).Value![0]);
    }

    [Fact]
    public async Task Jane_Sending_Impersonate_User_Admin_Is_Refused_And_Nothing_Is_Created()
    {
        using var jane = fixture.Http("jane");
        using var admin = fixture.Http("admin");
        var name = NewName("e2e-forged");
        using var request = CreateConfigMap(name);
        request.Headers.TryAddWithoutValidation("Impersonate-User", "admin");
        request.Headers.TryAddWithoutValidation("Impersonate-Group", "system:masters");

        using var response = await jane.SendAsync(request).WaitAsync(Timeout);
        using var lookup = await admin.GetAsync(new Uri($"/api/v1/namespaces/dev/configmaps/{name}", UriKind.Relative)).WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, lookup.StatusCode);
        Assert.Null(await RecordedAsync(admin, name));
    }

    [Fact]
    public async Task Jane_Claiming_System_Masters_In_X_Remote_Headers_Is_Still_Jane()
    {
        using var jane = fixture.Http("jane");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/namespaces/prod/secrets");
        request.Headers.TryAddWithoutValidation("X-Remote-User", "admin");
        request.Headers.TryAddWithoutValidation("X-Remote-Group", "system:masters");

        using var response = await jane.SendAsync(request).WaitAsync(Timeout);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("secrets is forbidden: User \\\"jane\\\" cannot list resource \\\"secrets\\\" in API group \\\"\\\" in the namespace \\\"prod\\\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Jane_Creating_In_Dev_With_Forged_X_Remote_Headers_Is_Recorded_As_Jane()
    {
        using var jane = fixture.Http("jane");
        using var admin = fixture.Http("admin");
        var name = NewName("e2e-jane-xr");
        using var request = CreateConfigMap(name);
        request.Headers.TryAddWithoutValidation("X-Remote-User", "admin");
        request.Headers.TryAddWithoutValidation("X-Remote-Group", "system:masters");

        using var response = await jane.SendAsync(request).WaitAsync(Timeout);
        var body = await response.Content.ReadAsStringAsync();
        var recorded = await RecordedAsync(admin, name);
        await admin.DeleteAsync(new Uri($"/api/v1/namespaces/dev/configmaps/{name}", UriKind.Relative));

        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        Assert.Equal("jane", (string?)JsonNode.Parse(body)!["metadata"]!["annotations"]!["sandbox.portcullis.dev/created-by"]);
        Assert.Equal("jane", (string?)recorded!["identity"]!["username"]);
        Assert.DoesNotContain(recorded["identity"]!["groups"]!.AsArray(), g => (string?)g == "system:masters");
    }

    [Fact]
    public async Task Anonymous_Request_Gets_KubeApiservers_Exact_401_Body()
    {
        using var anonymous = fixture.Http(null);

        using var response = await anonymous.GetAsync(new Uri("/api/v1/namespaces", UriKind.Relative)).WaitAsync(Timeout);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(Unauthorized, body);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Anonymous_Curl_Gets_KubeApiservers_Exact_401_Body()
    {
        if (!File.Exists("/usr/bin/curl"))
        {
            return; // the HttpClient test above covers the same answer
        }
        var info = new ProcessStartInfo("/usr/bin/curl", ["-sk", "-w", "\n%{http_code}", new Uri(fixture.Demo.Gateway, "/api/v1/namespaces").ToString()])
        {
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        using var curl = Process.Start(info)!;
        curl.StandardInput.Close();
        var output = await curl.StandardOutput.ReadToEndAsync().WaitAsync(Timeout);
        await curl.WaitForExitAsync().WaitAsync(Timeout);

        Assert.Equal(Unauthorized + "\n401", output);
    }

    [Theory]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task Intruder_Certificate_From_Another_CA_Fails_The_TLS_Handshake(SslProtocols protocol)
    {
        using var intruder = fixture.LoadClientCertificate("intruder");
        using var ca = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(fixture.Demo.Pki("ca.crt"));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, fixture.Demo.Gateway.Port).WaitAsync(Timeout);
        await using var tls = new SslStream(tcp.GetStream());
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocol,
            ClientCertificates = [intruder],
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && DemoFixture.ChainsTo(certificate, ca),
        };

        // TLS 1.2 refuses inside the handshake; in TLS 1.3 the server checks the client certificate after the client's
        // Finished, so the refusal arrives as an alert on the first read. Either way no HTTP byte ever comes back.
        var failed = false;
        var answer = "";
        try
        {
            await tls.AuthenticateAsClientAsync(options).WaitAsync(Timeout);
            await tls.WriteAsync(Encoding.ASCII.GetBytes("GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n")).AsTask().WaitAsync(Timeout);
            var buffer = new byte[4096];
            var read = await tls.ReadAsync(buffer).AsTask().WaitAsync(Timeout);
            failed = read == 0;
            answer = Encoding.ASCII.GetString(buffer, 0, read);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            failed = true;
        }

        Assert.True(failed, "the gateway answered the intruder: " + answer);
    }

    private static string NewName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    private static HttpRequestMessage CreateConfigMap(string name) =>
        new(HttpMethod.Post, $"/api/v1/namespaces/dev/configmaps?fieldManager={name}")
        {
            Content = new StringContent($$$"""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"{{{name}}}"},"data":{"a":"b"}}""",
                Encoding.UTF8, "application/json"),
        };

    /// <summary>The sandbox's record of the request tagged with <paramref name="name"/>, read through the gateway as admin.</summary>
    private static async Task<JsonObject?> RecordedAsync(HttpClient admin, string name)
    {
        using var response = await admin.GetAsync(new Uri("/sandbox/requests?limit=1000", UriKind.Relative)).WaitAsync(Timeout);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!["items"]!.AsArray()
            .Select(i => i!.AsObject())
            .LastOrDefault(i => ((string?)i["path"])?.Contains("fieldManager=" + name, StringComparison.Ordinal) == true);
    }
}
