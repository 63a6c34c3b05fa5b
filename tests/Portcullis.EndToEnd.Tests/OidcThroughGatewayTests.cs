using System.Diagnostics;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// A real OpenID provider (npm oidc-provider, client_credentials with resource indicators → JWT access tokens) in front
/// of which the built CLI's demo gateway is configured with <c>authentication.oidc</c>; the real kubectl presents the
/// provider's tokens with <c>--token</c>. Issue 4's first test bullet, end to end.
/// </summary>
public sealed class OidcThroughGatewayTests(OidcGatewayFixture fixture) : IClassFixture<OidcGatewayFixture>
{
    /// <summary>How long a test waits for the gateway to reach a state (a JWKS refresh, a token's expiry).</summary>
    private static readonly TimeSpan StateDeadline = TimeSpan.FromSeconds(45);

    [OidcKubectlFact]
    public async Task Provider_token_lists_pods_in_dev_and_RBAC_applies_to_the_oidc_user()
    {
        using var kubectl = fixture.Kubectl();
        var token = await fixture.Provider.GetTokenAsync();

        var dev = await kubectl.RunAsync("--token", token, "get", "pods", "-n", "dev");
        var prod = await kubectl.RunAsync("--token", token, "get", "pods", "-n", "prod");

        Assert.True(dev.ExitCode == 0, dev.ToString());
        Assert.Contains("web-1", dev.Stdout, StringComparison.Ordinal);
        // usernameClaim sub without usernamePrefix: kube-apiserver's default prefix "<issuerURL>#".
        Assert.NotEqual(0, prod.ExitCode);
        Assert.Contains($"pods is forbidden: User \"{fixture.Provider.Issuer}#{OidcProvider.ClientId}\" cannot list resource \"pods\"", prod.Stderr, StringComparison.Ordinal);
    }

    [OidcKubectlFact]
    public async Task Token_for_another_audience_is_401()
    {
        using var kubectl = fixture.Kubectl();
        var token = await fixture.Provider.GetTokenAsync("https://other.example");

        var result = await kubectl.RunAsync("--token", token, "get", "pods", "-n", "dev");

        AssertUnauthorized(result);
        await fixture.WaitForGatewayLogAsync("expected audience \"https://portcullis.test\" got [\"https://other.example\"]", "expected audience");
    }

    [OidcKubectlFact]
    public async Task Expired_token_is_401()
    {
        using var kubectl = fixture.Kubectl();
        string token;
        await fixture.Provider.SetTokenLifetimeAsync(1);
        try
        {
            token = await fixture.Provider.GetTokenAsync();
        }
        finally
        {
            await fixture.Provider.SetTokenLifetimeAsync(600);
        }

        // The token lives one second (exp is checked without leeway): poll, with a deadline, until it is refused. A success
        // before then is cached at most until exp, never past it. A run during which the token expires can fail part-way
        // through kubectl's discovery ("the server doesn't have a resource type"); only a run refused from its first request
        // is the answer this test waits for.
        var result = await RunUntilAsync(kubectl, token, r => r.ExitCode != 0 && IsUnauthorized(r));

        AssertUnauthorized(result);
        await fixture.WaitForGatewayLogAsync("oidc: verify token: oidc: token is expired", "token is expired");
    }

    [OidcKubectlFact]
    public async Task Key_rotation_is_followed_without_restart_and_a_token_of_the_rotated_out_key_is_401()
    {
        using var kubectl = fixture.Kubectl();
        var beforeUsed = await fixture.Provider.GetTokenAsync();
        var beforeUnused = await fixture.Provider.GetTokenAsync(); // same key; never presented before the rotation
        var accepted = await kubectl.RunAsync("--token", beforeUsed, "get", "pods", "-n", "dev");
        Assert.True(accepted.ExitCode == 0, accepted.ToString());

        await fixture.Provider.RotateKeysAsync();
        var after = await fixture.Provider.GetTokenAsync();

        // The new kid makes the gateway refresh the JWKS, at most once per 10 s (a refused attempt is remembered for at
        // most 10 s): the same gateway process accepts the new key's token within the deadline.
        var followed = await RunUntilAsync(kubectl, after, r => r.ExitCode == 0);
        Assert.True(followed.ExitCode == 0, followed.ToString());
        Assert.Contains("web-1", followed.Stdout, StringComparison.Ordinal);

        var rotatedOut = await kubectl.RunAsync("--token", beforeUnused, "get", "pods", "-n", "dev");
        AssertUnauthorized(rotatedOut);
        await fixture.WaitForGatewayLogAsync("no key with kid", "no key with kid");
    }

    private static void AssertUnauthorized(KubectlResult result)
    {
        Assert.NotEqual(0, result.ExitCode);
        Assert.True(IsUnauthorized(result), result.ToString());
    }

    // kubectl's renderings of a 401 (by client-go version): "error: You must be logged in to the server (Unauthorized)"
    // or "... (the server has asked for the client to provide credentials)".
    private static bool IsUnauthorized(KubectlResult result) =>
        result.Stderr.Contains("You must be logged in to the server (Unauthorized)", StringComparison.Ordinal)
        || result.Stderr.Contains("You must be logged in to the server (the server has asked for the client to provide credentials)", StringComparison.Ordinal);

    /// <summary>Runs <c>get pods -n dev</c> with <paramref name="token"/> until <paramref name="done"/> holds or the deadline passes.</summary>
    private static async Task<KubectlResult> RunUntilAsync(Kubectl kubectl, string token, Func<KubectlResult, bool> done)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var result = await kubectl.RunAsync("--token", token, "get", "pods", "-n", "dev");
            if (done(result) || deadline.Elapsed > StateDeadline)
            {
                return result;
            }
            await Task.Delay(250); // a poll interval under a deadline, not a synchronisation sleep
        }
    }
}

/// <summary>
/// The oidc-provider and one <c>portcullis demo</c> process whose <c>portcullis.yaml</c> (written before its first start, so
/// the demo keeps it) adds <c>authentication.oidc</c> for the provider, and whose RBAC lets the provider's group
/// <c>dev-team</c> read pods in namespace dev.
/// </summary>
public sealed class OidcGatewayFixture : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-e2e-oidc-").FullName;
    private OidcProvider? _provider;
    private DemoProcess? _demo;

    public OidcProvider Provider => _provider ?? throw new InvalidOperationException("the oidc provider has not started");
    public DemoProcess Demo => _demo ?? throw new InvalidOperationException("the demo has not started");

    public Kubectl Kubectl() => new(Path.Combine(_dir, "oidc.kubeconfig"));

    public async Task InitializeAsync()
    {
        if (Portcullis.Testing.Kubectl.Path is null || OidcProvider.UnavailableReason is not null)
        {
            return; // every test is skipped with the reason
        }
        _provider = await OidcProvider.StartAsync(_dir);
        File.WriteAllText(Path.Combine(_dir, "portcullis.yaml"), $"""
            apiVersion: portcullis.dev/v1alpha1
            kind: GatewayConfiguration
            listeners:
            - address: 127.0.0.1:0
            network:
              allow: [127.0.0.0/8]
            tls:
              certFile: pki/gateway.crt
              keyFile: pki/gateway.key
              clientCAFile: pki/ca.crt
            authentication:
              anonymous:
                enabled: false
              tokenAuthFile: tokens.csv
              oidc:
                issuerURL: {_provider.Issuer}
                clientID: {OidcProvider.DefaultAudience}
                usernameClaim: sub
                groupsClaim: groups
                caFile: oidc-ca.crt
            authorization:
              modes: [RBAC]
              rbac:
                manifests: [rbac]
            upstream:
              kubeconfig: upstream.kubeconfig
              identity: Impersonate
            admin:
              address: 127.0.0.1:0

            """);
        Directory.CreateDirectory(Path.Combine(_dir, "rbac"));
        File.WriteAllText(Path.Combine(_dir, "rbac", "30-oidc.yaml"), """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {name: oidc-pod-reader, namespace: dev}
            rules:
            - apiGroups: [""]
              resources: [pods]
              verbs: [get, list]
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: oidc-dev-team, namespace: dev}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: oidc-pod-reader}
            subjects:
            - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: dev-team}
            """);
        _demo = await DemoProcess.StartAsync(_dir);
        File.WriteAllText(Path.Combine(_dir, "oidc.kubeconfig"), $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: gateway
              cluster:
                server: {_demo.Gateway}
                certificate-authority: {Path.Combine(_dir, "pki", "ca.crt")}
            contexts:
            - name: oidc
              context: {"{"}cluster: gateway, user: oidc{"}"}
            users:
            - name: oidc
              user: {"{}"}
            current-context: oidc
            """);
        await WaitUntilOidcIsReadyAsync();
    }

    /// <summary>Waits until a line of the gateway's log contains <paramref name="text"/> (logging is asynchronous).</summary>
    public async Task WaitForGatewayLogAsync(string text, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!Demo.Output.Contains(text, StringComparison.Ordinal))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(15))
            {
                Assert.Fail($"the gateway never logged the reason \"{what}\"");
            }
            await Task.Delay(50); // poll interval under a deadline
        }
    }

    /// <summary>
    /// The gateway fetches the issuer's discovery document and JWKS in the background after it starts: poll the child
    /// process's readiness with fresh tokens (a refused one is remembered for a while) until one is accepted.
    /// </summary>
    private async Task WaitUntilOidcIsReadyAsync()
    {
        using var kubectl = Kubectl();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var result = await kubectl.RunAsync("--token", await Provider.GetTokenAsync(), "get", "--raw", "/version");
            if (result.ExitCode == 0)
            {
                return;
            }
            if (deadline.Elapsed > TimeSpan.FromSeconds(45))
            {
                throw new TimeoutException("the gateway never accepted the oidc provider's token: " + result.Stderr + "\n" + Demo.Output);
            }
            await Task.Delay(200); // poll interval under a deadline
        }
    }

    public async Task DisposeAsync()
    {
        if (_demo is not null)
        {
            await _demo.DisposeAsync();
        }
        if (_provider is not null)
        {
            await _provider.DisposeAsync();
        }
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
