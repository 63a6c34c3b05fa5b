using System.Text.Json;
using CsCheck;
using Portcullis.Authentication;
using Portcullis.Authorization.Webhook;

namespace Portcullis.Authorization.Tests;

/// <summary>
/// The webhook authorizer's decision cache is keyed by the spec JSON it sends. The key is exactly the bytes the webhook
/// reviews, and those bytes parse back to the attributes they came from: two requests that differ in anything the
/// webhook sees never share a key, however their user, groups, extra or selectors are spelled.
/// </summary>
public sealed class WebhookCacheKeyTests
{
    // Letters and every character a naive join or JSON writer could confuse: separators, quotes, escapes, brackets,
    // selector syntax, control and non-ASCII characters (no lone surrogates: those are U+FFFD in Go's JSON too).
    private static readonly Gen<string> Text = Gen.Char["ab,:=!\"\\[]{}() \n\t\u0000\u2028<&é日"].Array[0, 6].Select(c => new string(c));

    private static readonly Gen<AuthorizationAttributes> Attributes =
        Gen.Select(Text, Text, Text.List[0, 3], Gen.Dictionary(Text, Text.List[0, 3].Select(l => (IReadOnlyList<string>)l))[0, 3], Text, Text)
            .Select((name, uid, groups, extra, ns, objectName) => new AuthorizationAttributes(
                new UserInfo(name, uid, groups, extra),
                RequestInfoParser.Resource("get", "", "pods", ns: ns) with { Name = objectName }));

    private static (string User, string Uid, string[] Groups, SortedDictionary<string, string[]> Extra, string Ns, string Name) Read(string spec)
    {
        using var doc = JsonDocument.Parse(spec);
        var root = doc.RootElement;
        string S(JsonElement e, string n) => e.TryGetProperty(n, out var v) ? v.GetString()! : "";
        var extra = new SortedDictionary<string, string[]>(StringComparer.Ordinal);
        if (root.TryGetProperty("extra", out var x))
        {
            foreach (var p in x.EnumerateObject())
            {
                extra[p.Name] = [.. p.Value.EnumerateArray().Select(v => v.GetString()!)];
            }
        }
        var groups = root.TryGetProperty("groups", out var g) ? g.EnumerateArray().Select(v => v.GetString()!).ToArray() : [];
        var r = root.GetProperty("resourceAttributes");
        return (S(root, "user"), S(root, "uid"), groups, extra, S(r, "namespace"), S(r, "name"));
    }

    [Fact]
    public void The_key_parses_back_to_the_attributes_it_was_made_from()
    {
        Attributes.Sample(a =>
        {
            var read = Read(SubjectAccessReview.SpecJson(a, "v1"));
            Assert.Equal(a.User.Name, read.User);
            Assert.Equal(a.User.Uid, read.Uid);
            Assert.Equal(a.User.Groups, read.Groups);
            Assert.Equal(a.User.Extra.Count, read.Extra.Count);
            foreach (var (k, v) in a.User.Extra)
            {
                Assert.Equal(v, read.Extra[k]);
            }
            Assert.Equal(a.Request.Namespace, read.Ns);
            Assert.Equal(a.Request.Name, read.Name);
        }, iter: 5_000);
    }

    [Fact]
    public void Two_different_attribute_sets_never_share_a_key()
    {
        Gen.Select(Attributes, Attributes).Sample((a, b) =>
        {
            var same = a.User.Name == b.User.Name && a.User.Uid == b.User.Uid && a.User.Groups.SequenceEqual(b.User.Groups)
                && a.User.Extra.Count == b.User.Extra.Count
                && a.User.Extra.All(kv => b.User.Extra.TryGetValue(kv.Key, out var v) && v.SequenceEqual(kv.Value))
                && a.Request.Namespace == b.Request.Namespace && a.Request.Name == b.Request.Name;
            Assert.Equal(same, SubjectAccessReview.SpecJson(a, "v1") == SubjectAccessReview.SpecJson(b, "v1"));
        }, iter: 5_000);
    }

    private static AuthorizationAttributes With(UserInfo user, string labelSelector = "", string fieldSelector = "") =>
        new(user, RequestInfoParser.Resource("list", "", "pods", ns: "default") with { LabelSelector = labelSelector, FieldSelector = fieldSelector });

    private static Dictionary<string, IReadOnlyList<string>> Extra(params (string Key, string[] Values)[] entries) =>
        entries.ToDictionary(e => e.Key, e => (IReadOnlyList<string>)e.Values);

    public static TheoryData<string, AuthorizationAttributes, AuthorizationAttributes> Pairs() => new()
    {
        { "extra values joined", With(new("u", "", [], Extra(("k", ["a,b"])))), With(new("u", "", [], Extra(("k", ["a", "b"])))) },
        { "extra key and value moved", With(new("u", "", [], Extra(("k=a", ["b"])))), With(new("u", "", [], Extra(("k", ["a=b"])))) },
        { "extra split across keys", With(new("u", "", [], Extra(("a", ["b"]), ("c", ["d"])))), With(new("u", "", [], Extra(("a", ["b\",\"c\":[\"d"])))) },
        { "user spills into groups", With(new("u\",\"groups\":[\"system:masters", "", [], UserInfo.NoExtra)), With(new("u", "", ["system:masters"], UserInfo.NoExtra)) },
        { "empty extra value", With(new("u", "", [], Extra(("k", [])))), With(new("u", "", [], Extra(("k", [""])))) },
        { "group into user", With(new("ab", "", [], UserInfo.NoExtra)), With(new("a", "", ["b"], UserInfo.NoExtra)) },
        { "label selector values", With(UserInfo.Create("u"), "a in (b,c)"), With(UserInfo.Create("u"), "a=b,c") },
        { "label or field selector", With(UserInfo.Create("u"), labelSelector: "a=b"), With(UserInfo.Create("u"), fieldSelector: "a=b") },
        { "selector requirements split", With(UserInfo.Create("u"), "a=b,c=d"), With(UserInfo.Create("u"), "a in (b),c notin (d)") },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Ambiguous_joins_have_different_keys(string name, AuthorizationAttributes a, AuthorizationAttributes b)
    {
        Assert.True(SubjectAccessReview.SpecJson(a, "v1") != SubjectAccessReview.SpecJson(b, "v1"), name);
    }

    [Fact]
    public async Task Requests_whose_extra_joins_alike_are_each_asked()
    {
        await using var server = await SarServer.StartAsync();
        using var webhook = WebhookAuthorizer.Create(server.KubeconfigPath, new WebhookAuthorizerOptions { Timeout = TimeSpan.FromSeconds(10) });
        var a = With(new("u", "", [], Extra(("k", ["a,b"]))));
        var b = With(new("u", "", [], Extra(("k", ["a", "b"]))));
        Assert.True((await webhook.AuthorizeAsync(a, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(20))).IsAllowed);
        Assert.True((await webhook.AuthorizeAsync(b, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(20))).IsAllowed);
        Assert.True((await webhook.AuthorizeAsync(a, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(20))).IsAllowed);
        Assert.Equal(2, webhook.Calls);
    }
}
