using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Portcullis.Authentication.X509;
using Portcullis.Tls;
using static Portcullis.Testing.TestPki;

namespace Portcullis.Authentication.Tests;

public sealed class X509Tests
{
    private static readonly Lazy<(X509Certificate2 A, X509Certificate2 B, X509Certificate2 Stranger)> Cas =
        new(() => (CreateCa("ca-a"), CreateCa("ca-b"), CreateCa("stranger")));

    private static ClientCertificateValidator Validator() => new([Cas.Value.A, Cas.Value.B]);

    [Fact]
    public void Identity_is_CN_then_every_O_in_order_then_UID_and_the_credential_id()
    {
        using var cert = CreateClient(Cas.Value.A, [CN("alice"), O("system:masters"), O("dev-team"), Uid("uid-42")]);
        var user = X509Identity.FromCertificate(cert)!;
        Assert.Equal("alice", user.Name);
        Assert.Equal(["system:masters", "dev-team"], user.Groups);
        Assert.Equal("uid-42", user.Uid);
        Assert.Equal(["X509SHA256=" + Convert.ToHexStringLower(SHA256.HashData(cert.RawData))], user.Extra[X509Identity.CredentialIdKey]);
    }

    [Fact]
    public void Empty_CN_is_no_user_and_two_UIDs_are_an_error()
    {
        using var noCn = CreateClient(Cas.Value.A, [O("dev")]);
        Assert.Null(X509Identity.FromCertificate(noCn));
        using var twoUids = CreateClient(Cas.Value.A, [CN("bob"), Uid("1"), Uid("2")]);
        Assert.Throws<FormatException>(() => X509Identity.FromCertificate(twoUids));
    }

    [Fact]
    public void Certificates_of_every_CA_in_the_bundle_verify_and_results_are_cached()
    {
        var validator = Validator();
        using var fromA = CreateClient(Cas.Value.A, [CN("a-user")]);
        using var fromB = CreateClient(Cas.Value.B, [CN("b-user"), O("g")]);
        Assert.Equal("a-user", validator.Validate(fromA).User!.Name);
        var first = validator.Validate(fromB);
        Assert.Equal("b-user", first.User!.Name);
        Assert.Same(first, validator.Validate(fromB));
    }

    [Fact]
    public void A_flood_of_refused_certificates_does_not_push_a_verified_result_out_of_the_cache()
    {
        var validator = new ClientCertificateValidator([Cas.Value.A], capacity: 4);
        using var client = CreateClient(Cas.Value.A, [CN("a-user")]);
        var verified = validator.Validate(client);
        Assert.Equal("a-user", verified.User!.Name);
        ClientCertificateResult? last = null;
        X509Certificate2? lastStranger = null;
        for (var i = 0; i < 12; i++)
        {
            lastStranger?.Dispose();
            lastStranger = CreateClient(Cas.Value.Stranger, [CN("eve-" + i)]);
            last = validator.Validate(lastStranger);
            Assert.NotNull(last.Error);
        }
        // Three times the capacity of refusals later, the client's result is still the cached one (the old single cache was
        // cleared when full), and a refusal is remembered too.
        Assert.Same(verified, validator.Validate(client));
        Assert.Same(last, validator.Validate(lastStranger!));
        lastStranger!.Dispose();
    }

    [Fact]
    public void Unknown_CA_and_missing_client_auth_EKU_fail_with_the_kube_apiserver_prefix()
    {
        var validator = Validator();
        using var stranger = CreateClient(Cas.Value.Stranger, [CN("eve")]);
        var unknown = validator.Validate(stranger);
        Assert.Null(unknown.User);
        Assert.StartsWith("verifying certificate SN=" + stranger.SerialNumber, unknown.Error, StringComparison.Ordinal);
        using var serverOnly = CreateClient(Cas.Value.A, [CN("svc")], clientAuth: false);
        var eku = validator.Validate(serverOnly);
        Assert.Null(eku.User);
        Assert.NotNull(eku.Error);
    }

    [Fact]
    public void Intermediates_presented_by_the_client_complete_the_chain()
    {
        var intermediate = CreateCa("intermediate", Cas.Value.A);
        using var leaf = CreateClient(intermediate, [CN("deep")]);
        var validator = Validator();
        Assert.NotNull(validator.Validate(leaf).Error);
        using var leaf2 = CreateClient(intermediate, [CN("deep2")]);
        Assert.Equal("deep2", validator.Validate(leaf2, [intermediate]).User!.Name);
    }

    [Fact]
    public async Task Chain_built_from_gateway_configuration_verifies_with_the_client_CA_file()
    {
        var dir = Directory.CreateTempSubdirectory("portcullis-x509-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "ca.crt"), Pem(Cas.Value.A) + Pem(Cas.Value.B));
            var config = new Configuration.GatewayConfiguration { BaseDirectory = dir, Tls = new() { ClientCAFile = "ca.crt" } };
            using var chain = AuthenticatorChain.Create(config);
            using var cert = CreateClient(Cas.Value.B, [CN("frank"), O("ops")]);
            var connection = chain.CertificateValidator!.Validate(cert);
            var result = await chain.AuthenticateAsync(new AuthenticationRequest { ClientCertificateUser = connection.User, ClientCertificateError = connection.Error }, CancellationToken.None)
                .AsTask().WaitAsync(Wait.Timeout);
            Assert.Equal("frank", result.User!.Name);
            Assert.Equal(["ops", "system:authenticated"], result.User.Groups);
            Assert.Equal("x509", result.Authenticator);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
