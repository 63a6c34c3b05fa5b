using System.Net;
using CsCheck;
using Portcullis.Network;

namespace Portcullis.Core.Tests.Network;

/// <summary>
/// <see cref="ForwardedFor"/>: headers believed from trusted peers only, the chain walked from the right past trusted
/// proxies, the sourceIPs in kube-apiserver's order, RFC 7239 <c>Forwarded</c> syntax, and every unreadable case refused
/// rather than attributed to the proxy.
/// </summary>
public class ForwardedForTests
{
    private static readonly CidrSet Trusted = CidrSet.Parse(["10.0.0.0/8", "2001:db8:ffff::/48"]);
    private static readonly IPAddress Proxy = IPAddress.Parse("10.0.0.5");

    private static ForwardedSource Resolve(string? xff = null, string? forwarded = null, IPAddress? peer = null) =>
        ForwardedFor.Resolve(peer ?? Proxy, Trusted, xff is null ? [] : [xff], forwarded is null ? [] : [forwarded]);

    private static string[] Ips(ForwardedSource s) => [.. s.SourceIps.Select(i => i.ToString())];

    [Fact]
    public void From_an_untrusted_peer_the_headers_are_ignored()
    {
        var s = Resolve("203.0.113.9", "for=203.0.113.9", IPAddress.Parse("192.0.2.7"));
        Assert.Equal(IPAddress.Parse("192.0.2.7"), s.Client);
        Assert.False(s.ViaProxy);
        Assert.Null(s.Error);
        Assert.Equal(["192.0.2.7"], Ips(s));
    }

    [Fact]
    public void The_rightmost_untrusted_address_is_the_client_and_spoofed_entries_left_of_it_are_dropped()
    {
        // The client wrote "1.2.3.4" itself; 198.51.100.7 is what the outer proxy saw; 10.1.1.1 is an inner proxy.
        var s = Resolve("1.2.3.4, 198.51.100.7, 10.1.1.1");
        Assert.Equal(IPAddress.Parse("198.51.100.7"), s.Client);
        Assert.True(s.ViaProxy);
        Assert.Equal(["198.51.100.7", "10.1.1.1", "10.0.0.5"], Ips(s));
    }

    [Fact]
    public void Junk_left_of_the_client_is_never_reached_but_junk_right_of_it_refuses()
    {
        Assert.Equal(IPAddress.Parse("198.51.100.7"), Resolve("garbage, unknown, 198.51.100.7").Client);
        var refused = Resolve("198.51.100.7, unknown");
        Assert.NotNull(refused.Error);
        Assert.False(refused.ViaProxy);
        Assert.NotNull(Resolve("198.51.100.7, ").Error);
        Assert.NotNull(Resolve("").Error);
    }

    [Fact]
    public void All_trusted_means_the_leftmost_is_the_client()
    {
        var s = Resolve("10.9.9.9, 10.1.1.1");
        Assert.Equal(IPAddress.Parse("10.9.9.9"), s.Client);
        Assert.Equal(["10.9.9.9", "10.1.1.1", "10.0.0.5"], Ips(s));
    }

    [Fact]
    public void The_peer_is_not_repeated_when_the_chain_ends_with_it()
    {
        Assert.Equal(["198.51.100.7", "10.0.0.5"], Ips(Resolve("198.51.100.7, 10.0.0.5")));
    }

    [Theory]
    [InlineData("198.51.100.7:4711", "198.51.100.7")]
    [InlineData("[2001:db8::7]:4711", "2001:db8::7")]
    [InlineData("2001:db8::7", "2001:db8::7")]
    [InlineData("::ffff:198.51.100.7", "198.51.100.7")]
    public void X_forwarded_for_entries_with_ports_and_ipv6(string entry, string client)
    {
        Assert.Equal(IPAddress.Parse(client), Resolve(entry).Client);
    }

    [Theory]
    [InlineData("for=198.51.100.7", "198.51.100.7")]
    [InlineData("for=198.51.100.7;proto=https;by=10.0.0.5", "198.51.100.7")]
    [InlineData("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17")]
    [InlineData("for=\"198.51.100.7:4711\"", "198.51.100.7")]
    [InlineData("for=1.2.3.4, for=198.51.100.7, for=10.1.1.1", "198.51.100.7")]
    [InlineData("for=198.51.100.7;proto=http, for=10.1.1.1", "198.51.100.7")]
    [InlineData("proto=\"a,b;c\";for=198.51.100.7", "198.51.100.7")] // separators inside a quoted-string
    [InlineData("for=198.51.100.7 ; host=example.com", "198.51.100.7")]
    public void Forwarded_rfc_7239_examples(string header, string client)
    {
        var s = Resolve(forwarded: header);
        Assert.Null(s.Error);
        Assert.Equal(IPAddress.Parse(client), s.Client);
        Assert.True(s.ViaProxy);
    }

    [Theory]
    [InlineData("for=198.51.100.7:4711")] // a port needs quotes (':' is not a token character)
    [InlineData("for=\"198.51.100.7")] // unterminated quoted-string
    [InlineData("for")] // no value
    [InlineData("for=198.51.100.7;for=198.51.100.8")] // for twice in one element
    [InlineData("for=unknown")] // the client is not named
    [InlineData("for=_hidden")] // obfuscated
    [InlineData("for=[2001:db8::7]")] // brackets need quotes
    [InlineData("for=198.51.100.7, by=10.0.0.1")] // the last hop does not say for whom
    public void Unreadable_forwarded_headers_are_refused(string header)
    {
        var s = Resolve(forwarded: header);
        Assert.NotNull(s.Error);
        Assert.Equal(Proxy, s.Client);
        Assert.False(s.ViaProxy);
    }

    [Fact]
    public void Both_headers_must_name_the_same_client()
    {
        // nginx appends X-Forwarded-For but passes the client's own Forwarded header through: a spoof.
        Assert.NotNull(Resolve("198.51.100.7", "for=1.2.3.4").Error);
        var agree = Resolve("198.51.100.7", "for=198.51.100.7");
        Assert.Null(agree.Error);
        Assert.Equal(IPAddress.Parse("198.51.100.7"), agree.Client);
    }

    [Fact]
    public void A_trusted_peer_without_forwarding_headers_is_the_client()
    {
        var s = Resolve();
        Assert.Equal(Proxy, s.Client);
        Assert.False(s.ViaProxy);
        Assert.Equal(["10.0.0.5"], Ips(s));
    }

    [Fact]
    public void The_client_is_never_a_trusted_address_unless_every_entry_is_and_sourceips_end_with_the_peer()
    {
        var address = Gen.OneOf(
            Gen.Int[0, 255].Select(i => $"10.0.0.{i}"),
            Gen.Int[0, 255].Select(i => $"198.51.100.{i}"),
            Gen.Int[0, 255].Select(i => $"2001:db8:ffff::{i:x}"),
            Gen.Const("unknown"));
        address.Array[1, 6].Sample(entries =>
        {
            var s = Resolve(string.Join(", ", entries));
            if (s.Error is not null)
            {
                // Refused only when a non-address is met before an untrusted address, walking from the right.
                var firstUntrusted = Array.FindLastIndex(entries, e => e != "unknown" && !Trusted.Contains(IPAddress.Parse(e)));
                var lastJunk = Array.LastIndexOf(entries, "unknown");
                return lastJunk > firstUntrusted && !s.ViaProxy && s.Client.Equals(Proxy);
            }
            var allTrusted = entries.All(e => e != "unknown" && Trusted.Contains(IPAddress.Parse(e)));
            return (allTrusted || !Trusted.Contains(s.Client)) && s.SourceIps[0].Equals(s.Client) && s.SourceIps[^1].Equals(Proxy);
        });
    }
}
