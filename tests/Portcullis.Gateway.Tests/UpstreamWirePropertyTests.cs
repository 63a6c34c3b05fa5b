using System.Text;
using CsCheck;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 13, deliver 8: random client headers (names and values in every spelling and encoding, CR/LF/NUL, the gateway's
/// own header names including the live marker) and random identities (client certificates whose CN and O values may
/// hold anything) sent as raw bytes through a real gateway to an upstream that records the raw bytes it receives. For
/// every case the upstream receives either nothing (the gateway refused) or exactly one request carrying exactly the
/// identity lines the gateway decided — the certificate's CN and O values — and no other identity-like line.
/// Deterministic: a fixed seed and a stated number of cases.
/// </summary>
public sealed class UpstreamWirePropertyTests
{
    private const ulong Seed = 13_2026_12_05;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    // Everyone may read pods; nobody may impersonate: an identity can only come from the certificate.
    private const string ReadersRbac = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: pod-reader}
        rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: everyone-reads-pods}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
        subjects:
        - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:authenticated"}
        """;

    private static readonly Gen<string> Piece = Gen.OneOf(
        Gen.Const("admin"), Gen.Const("system:masters"), Gen.Const("jane"), Gen.Const("dev"), Gen.Const(" "), Gen.Const("\t"),
        Gen.Const("\r\n"), Gen.Const("\n"), Gen.Const("\r"), Gen.Const("\0"), Gen.Const("\u0001"), Gen.Const("\u007F"), Gen.Const("\u0085"),
        Gen.Const("%0D%0A"), Gen.Const("%3A"), Gen.Const(","), Gen.Const(":"), Gen.Const("é"), Gen.Const("中"), Gen.Const("\uD800"),
        Gen.Const("Impersonate-Group: system:masters"), Gen.Const("\r\n\r\nDELETE /api/v1/namespaces/kube-system/secrets/x HTTP/1.1\r\nHost: x\r\n"),
        Gen.String[Gen.Char['a', 'z'], 1, 6]);

    private static readonly Gen<string> Value = Piece.Array[0, 4].Select(p => string.Concat(p));

    private static readonly Gen<string> Name = Gen.OneOf(
        Gen.Const("X-Portcullis-Split-Impersonate-User"), Gen.Const("x-portcullis-split-impersonate-group"),
        Gen.Const("X_Portcullis_Split_Impersonate-Group"), Gen.Const("X-Portcullis-Split-X-Remote-User"), Gen.Const("X-PORTCULLIS-IDENTITY"),
        Gen.Const("{marker}"), Gen.Const("Impersonate-User"), Gen.Const("impersonate_group"), Gen.Const("Impersonate-Extra-scopes"),
        Gen.Const("X-Remote-User"), Gen.Const("x_remote_group"), Gen.Const("X-Forwarded-For"), Gen.Const("Forwarded"), Gen.Const("Audit-ID"),
        Gen.Const("Sec-WebSocket-Protocol"), Gen.Const("Proxy-Authorization"), Gen.Const("X-Anything"), Gen.Const("Accept"),
        Gen.String[Gen.Char['a', 'z'], 1, 8].Select(s => "X-" + s));

    private static readonly Gen<string> Plain = Gen.String[Gen.Char['a', 'z'], 1, 8];

    // Hostile pieces one time in three, so that most cases reach the upstream and the property is exercised.
    private static readonly Gen<(string Name, string Value)> Header = Gen.Select(Name, Gen.OneOf(Value, Plain, Plain,
        Gen.Const("base64url.bearer.authorization.k8s.io.dG9rZW4tcm9vdA"), Gen.Const("v4.channel.k8s.io, base64url.bearer.authorization.k8s.io.dG9r")));

    private sealed record Case(string User, string[] Groups, (string Name, string Value)[] Headers);

    private static readonly Gen<Case> Cases = Gen.Select(
        Gen.OneOf(Plain, Plain, Value.Where(v => v.Length > 0)),
        Gen.OneOf(Plain, Plain, Value.Where(v => v.Length > 0 && !v.Contains("system:masters", StringComparison.Ordinal))).Array[0, 3],
        Header.Array[0, 5],
        (user, groups, headers) => new Case(user, groups, headers));

    [Theory]
    [InlineData("Impersonate", 300)]
    [InlineData("RequestHeader", 100)]
    public async Task Random_headers_and_identities_reach_the_upstream_only_as_the_identity_the_gateway_decided(string identity, int cases)
    {
        await using var gw = await GatewayTestHost.StartAsync(modes: "[RBAC]", identity: identity, rawUpstream: true,
            files: new() { ["readers.yaml"] = ReadersRbac }, rbacManifests: "[readers.yaml]").WaitAsync(Timeout);
        var marker = gw.Host.Snapshots.Current.UpstreamClient.Identities.MarkerName;
        var (userHeader, groupHeader) = identity == "Impersonate" ? ("Impersonate-User", "Impersonate-Group") : ("X-Remote-User", "X-Remote-Group");
        var pcg = new PCG(1, Seed);
        var forwarded = 0;

        for (var i = 0; i < cases; i++)
        {
            var c = Cases.Generate(pcg, null, out _);
            var before = gw.Raw.Requests.Count;
            string response;
            try
            {
                var certificate = gw.Pki.IssueClient(c.User, c.Groups);
                var request = new StringBuilder($"GET /api/v1/namespaces/dev/pods?case={i} HTTP/1.1\r\nHost: localhost\r\n");
                foreach (var (name, value) in c.Headers)
                {
                    request.Append(name.Replace("{marker}", marker, StringComparison.Ordinal)).Append(": ").Append(value).Append("\r\n");
                }
                request.Append("Connection: close\r\n\r\n");
                response = await SendAsync(gw, certificate, Encoding.UTF8.GetBytes(request.ToString())).WaitAsync(Timeout);
            }
            catch (Exception ex) when (ex is ArgumentException or System.Security.Cryptography.CryptographicException)
            {
                continue; // a name the certificate encoder refuses cannot be presented at all
            }

            var received = gw.Raw.Requests.Skip(before).ToList();
            var describe = $"case {i}: user {Escape(c.User)}, groups [{string.Join(", ", c.Groups.Select(Escape))}], headers [{string.Join(", ", c.Headers.Select(h => Escape(h.Name + ": " + h.Value)))}], response {Escape(response.Split("\r\n")[0])}";
            Assert.True(received.Count <= 1, $"{describe}: the upstream received {received.Count} requests");
            if (received.Count == 0)
            {
                Assert.False(response.StartsWith("HTTP/1.1 200", StringComparison.Ordinal), $"{describe}: 200 without a forwarded request");
                continue;
            }
            forwarded++;
            var seen = received[0];
            Assert.True(seen.Anomalies.Count == 0, $"{describe}: {string.Join("; ", seen.Anomalies)}");
            Assert.Equal($"/api/v1/namespaces/dev/pods?case={i}", seen.Target);
            Assert.Equal([c.User], seen.Values(userHeader));
            Assert.Equal(c.Groups.Where(g => g != "system:authenticated"), seen.Values(groupHeader));
            var identityLike = seen.Lines.Where(l => IsIdentityLike(l.Name) && l.Name != userHeader && l.Name != groupHeader).ToList();
            Assert.True(identityLike.Count == 0, $"{describe}: extra identity lines {string.Join(", ", identityLike)}");
            Assert.DoesNotContain(seen.Values("Sec-WebSocket-Protocol"), v => v.Contains("bearer.authorization.k8s.io", StringComparison.OrdinalIgnoreCase));
            Assert.Equal([gw.Raw.Uri.Authority], seen.Values("Host"));
        }
        // The generator is not so hostile that nothing gets through: the property must have been exercised.
        Assert.True(forwarded >= cases / 10, $"only {forwarded} of {cases} cases were forwarded");
    }

    private static bool IsIdentityLike(string name)
    {
        var n = name.ToLowerInvariant().Replace('_', '-');
        return n.StartsWith("impersonate-", StringComparison.Ordinal) || n.StartsWith("x-remote-", StringComparison.Ordinal)
            || n.StartsWith("x-portcullis", StringComparison.Ordinal) || n is "authorization" or "proxy-authorization";
    }

    private static async Task<string> SendAsync(GatewayTestHost gw, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, byte[] request)
    {
        await using var tls = await RawHttps.ConnectAsync(gw, certificate);
        await tls.WriteAsync(request);
        return await RawHttps.ReadToEndAsync(tls);
    }

    private static string Escape(string s) => string.Concat(s.Select(ch => ch is < ' ' or '\u007F' or (>= '\u0080' and <= '\u009F') || char.IsSurrogate(ch) ? $"\\u{(int)ch:X4}" : ch.ToString()));
}
