using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using Portcullis.Authentication;
using Portcullis.Authentication.ServiceAccounts;
using Portcullis.Authentication.Tokens;

namespace Portcullis.Benchmarks;

/// <summary>
/// Layer 3 hot paths: a cached bearer token (the common case: every request after the first of a token), the x509
/// identity taken from the connection's cached verification, and a cold RS256 service-account validation.
/// </summary>
[MemoryDiagnoser]
public class AuthenticationBenchmarks
{
    private const string Issuer = "https://kubernetes.default.svc.cluster.local";
    private RSA _rsa = null!;
    private AuthenticatorChain _chain = null!;
    private ServiceAccountAuthenticator _serviceAccounts = null!;
    private AuthenticationRequest _bearerRequest = null!;
    private AuthenticationRequest _x509Request = null!;
    private string _token = "";
    private TokenDigest _digest;

    [GlobalSetup]
    public void Setup()
    {
        _rsa = RSA.Create(2048);
        _serviceAccounts = new ServiceAccountAuthenticator([JwtKey.FromRsa(_rsa)], [Issuer], [Issuer], successTtl: TimeSpan.FromHours(1));
        _chain = new AuthenticatorChain(null, [_serviceAccounts], options: new AuthenticatorChainOptions { TokenSuccessTtl = TimeSpan.FromHours(1) });
        _token = ServiceAccountToken(_rsa);
        _digest = TokenDigest.Of(_token);
        _bearerRequest = new AuthenticationRequest { AuthorizationHeaders = ["Bearer " + _token], Path = "/api/v1/namespaces/default/pods" };
        _x509Request = new AuthenticationRequest
        {
            // What ClientCertificateValidator.Validate returned for the connection, kept on it by the gateway.
            ClientCertificate = new Portcullis.Tls.ClientCertificateResult(
                UserInfo.Create("alice", ["system:masters", "dev-team"]).WithAuthenticatedGroup(), null),
            Path = "/api/v1/namespaces/default/pods",
        };
        var warm = _chain.AuthenticateAsync(_bearerRequest, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        if (!warm.Authenticated)
        {
            throw new InvalidOperationException("benchmark token was not accepted: " + warm.FailureReason);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _chain.Dispose();
        _rsa.Dispose();
    }

    /// <summary>A bound service-account token of realistic size (~1 KB, as kubelet projects them).</summary>
    private static string ServiceAccountToken(RSA rsa)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = $$"""{"alg":"RS256","kid":"{{JwtKey.FromRsa(rsa).KeyId}}"}""";
        var payload = $$"""{"aud":["{{Issuer}}"],"exp":{{now + 3600}},"iat":{{now}},"iss":"{{Issuer}}","jti":"8f2c7a1e-4b1d-4c7e-9d3f-1a2b3c4d5e6f","kubernetes.io":{"namespace":"team-a","node":{"name":"worker-1","uid":"b1d9e8a2-3c4f-4e5d-8a7b-6c5d4e3f2a1b"},"pod":{"name":"builder-7d9f8c6b5-x2x9z","uid":"c2e0f9b3-4d5a-4f6e-9b8c-7d6e5f4a3b2c"},"serviceaccount":{"name":"builder","uid":"d3f1a0c4-5e6b-4a7f-8c9d-8e7f6a5b4c3d"},"warnafter":{{now + 3000}}},"nbf":{{now}},"sub":"system:serviceaccount:team-a:builder"}""";
        var input = Base64Url.EncodeToString(Encoding.UTF8.GetBytes(header)) + "." + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(payload));
        return input + "." + Base64Url.EncodeToString(rsa.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    [Benchmark(Description = "cached bearer token through the chain")]
    public bool CachedBearerToken() => Completed(_chain.AuthenticateAsync(_bearerRequest, CancellationToken.None)).Authenticated;

    [Benchmark(Description = "x509 identity from the cached connection result")]
    public bool X509FromConnection() => Completed(_chain.AuthenticateAsync(_x509Request, CancellationToken.None)).Authenticated;

    [Benchmark(Description = "token SHA-256 digest alone")]
    public TokenDigest Digest() => TokenDigest.Of(_token);

    [Benchmark(Description = "remembered token's digest from the memo (XxHash3 + constant-time compare)")]
    public TokenDigest MemoDigest() => _chain.Digests.Of(_token);

    [Benchmark(Description = "cold RS256 service-account validation (parse + verify + map)")]
    public bool ColdRs256() => Completed(_serviceAccounts.AuthenticateTokenAsync(new TokenRequest(_token, _digest), CancellationToken.None)).Outcome == AuthenticationOutcome.Success;

    /// <summary>These paths do no I/O and complete synchronously; anything else is a benchmark bug.</summary>
    private static T Completed<T>(ValueTask<T> task) =>
        task.IsCompletedSuccessfully ? task.Result : throw new InvalidOperationException("expected a synchronous completion");
}
