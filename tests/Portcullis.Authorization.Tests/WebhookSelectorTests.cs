using Portcullis.Authentication;
using Portcullis.Authorization.Selectors;
using Portcullis.Authorization.Webhook;

namespace Portcullis.Authorization.Tests;

/// <summary>
/// The Webhook mode sends <c>resourceAttributes.fieldSelector</c> / <c>labelSelector</c> as kube-apiserver 1.34+ does.
/// The request lines are the cases of k8s.io/apiserver's own tests (pkg/endpoints/request/requestinfo_test.go
/// TestSelectorParsing: valid, invalid, repeated parameters, other verbs, verb-via-path watches; and
/// pkg/endpoints/filters/authorization_test.go TestGetAuthorizerAttributes: good and bad field and label selectors),
/// and the expected bodies follow GetAuthorizerAttributes (a selector that does not parse gives no requirements) and
/// plugin/pkg/authorizer/webhook resourceAttributesFrom (only requirements, never rawSelector; In/NotIn/Exists/
/// DoesNotExist; unsupported operators left out). Each body is the exact bytes a real HTTPS server received.
/// </summary>
public sealed class WebhookSelectorTests
{
    private const string Head = """{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{},"spec":{"resourceAttributes":{""";
    private const string Tail = "},\"user\":\"jane\"},\"status\":{\"allowed\":false}}\n";
    private const string Gvr = "\"group\":\"group\",\"version\":\"version\",\"resource\":\"resource\"";

    public static TheoryData<string, string, string, string> Cases => new()
    {
        // requestinfo_test.go TestSelectorParsing
        { "no selector", "GET", "/apis/group/version/resource", "\"verb\":\"list\"," + Gvr },
        { "metadata.name selector", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1",
            "\"verb\":\"list\"," + Gvr + ",\"name\":\"name1\",\"fieldSelector\":{\"requirements\":[{\"key\":\"metadata.name\",\"operator\":\"In\",\"values\":[\"name1\"]}]}" },
        { "metadata.name selector with watch", "GET", "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1",
            "\"verb\":\"watch\"," + Gvr + ",\"name\":\"name1\",\"fieldSelector\":{\"requirements\":[{\"key\":\"metadata.name\",\"operator\":\"In\",\"values\":[\"name1\"]}]}" },
        { "random selector", "GET", "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux",
            "\"verb\":\"list\"," + Gvr + ",\"fieldSelector\":{\"requirements\":[{\"key\":\"foo\",\"operator\":\"In\",\"values\":[\"bar\"]}]},\"labelSelector\":{\"requirements\":[{\"key\":\"baz\",\"operator\":\"In\",\"values\":[\"qux\"]}]}" },
        { "invalid selector with metadata.name", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo", "\"verb\":\"list\"," + Gvr },
        { "invalid selector with metadata.name with watch", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true", "\"verb\":\"watch\"," + Gvr },
        { "invalid selector with metadata.name with watch false", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false", "\"verb\":\"list\"," + Gvr },
        { "selector on deletecollection is honored", "DELETE", "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux",
            "\"verb\":\"deletecollection\"," + Gvr + ",\"fieldSelector\":{\"requirements\":[{\"key\":\"foo\",\"operator\":\"In\",\"values\":[\"bar\"]}]},\"labelSelector\":{\"requirements\":[{\"key\":\"baz\",\"operator\":\"In\",\"values\":[\"qux\"]}]}" },
        { "selector on repeated param matches parsed param", "GET", "/apis/group/version/resource?fieldSelector=metadata.name=foo&fieldSelector=metadata.name=bar&labelSelector=foo=bar&labelSelector=foo=baz",
            "\"verb\":\"list\"," + Gvr + ",\"name\":\"foo\",\"fieldSelector\":{\"requirements\":[{\"key\":\"metadata.name\",\"operator\":\"In\",\"values\":[\"foo\"]}]},\"labelSelector\":{\"requirements\":[{\"key\":\"foo\",\"operator\":\"In\",\"values\":[\"bar\"]}]}" },
        { "selector on other verb is ignored", "GET", "/apis/group/version/resource/name?fieldSelector=foo=bar&labelSelector=foo=bar", "\"verb\":\"get\"," + Gvr + ",\"name\":\"name\"" },
        { "selector on deprecated root type watch is not parsed", "GET", "/apis/group/version/watch/resource?fieldSelector=metadata.name=foo&labelSelector=foo=bar", "\"verb\":\"watch\"," + Gvr },
        { "selector on deprecated root item watch is not parsed", "GET", "/apis/group/version/watch/resource/name?fieldSelector=metadata.name=foo&labelSelector=foo=bar", "\"verb\":\"watch\"," + Gvr + ",\"name\":\"name\"" },
        // authorization_test.go TestGetAuthorizerAttributes
        { "ignore a parameter whose name has a bad escape", "GET", "/apis/batch/v1/namespaces/myns/jobs?fieldSelector%=foo%3Dbar",
            "\"namespace\":\"myns\",\"verb\":\"list\",\"group\":\"batch\",\"version\":\"v1\",\"resource\":\"jobs\"" },
        { "good field selector", "GET", "/apis/batch/v1/namespaces/myns/jobs?fieldSelector=foo%3D%3Dbar",
            "\"namespace\":\"myns\",\"verb\":\"list\",\"group\":\"batch\",\"version\":\"v1\",\"resource\":\"jobs\",\"fieldSelector\":{\"requirements\":[{\"key\":\"foo\",\"operator\":\"In\",\"values\":[\"bar\"]}]}" },
        { "bad field selector", "GET", "/apis/batch/v1/namespaces/myns/jobs?fieldSelector=%2Abar",
            "\"namespace\":\"myns\",\"verb\":\"list\",\"group\":\"batch\",\"version\":\"v1\",\"resource\":\"jobs\"" },
        { "good label selector", "GET", "/apis/batch/v1/namespaces/myns/jobs?labelSelector=foo%3D%3Dbar",
            "\"namespace\":\"myns\",\"verb\":\"list\",\"group\":\"batch\",\"version\":\"v1\",\"resource\":\"jobs\",\"labelSelector\":{\"requirements\":[{\"key\":\"foo\",\"operator\":\"In\",\"values\":[\"bar\"]}]}" },
        { "bad label selector", "GET", "/apis/batch/v1/namespaces/myns/jobs?labelSelector=%2Abar",
            "\"namespace\":\"myns\",\"verb\":\"list\",\"group\":\"batch\",\"version\":\"v1\",\"resource\":\"jobs\"" },
        // the operators of the webhook conversion: set-based label syntax sorted by key, gt/lt left out, field != and escapes
        { "set-based labels", "GET", "/api/v1/namespaces/dev/pods?labelSelector=tier+notin+(web),env+in+(prod,dev,prod),!canary,release,x%3E5",
            "\"namespace\":\"dev\",\"verb\":\"list\",\"version\":\"v1\",\"resource\":\"pods\",\"labelSelector\":{\"requirements\":[{\"key\":\"canary\",\"operator\":\"DoesNotExist\"},{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"dev\",\"prod\"]},{\"key\":\"release\",\"operator\":\"Exists\"},{\"key\":\"tier\",\"operator\":\"NotIn\",\"values\":[\"web\"]}]}" },
        { "only gt: nothing narrows", "GET", "/api/v1/pods?labelSelector=x%3E5", "\"verb\":\"list\",\"version\":\"v1\",\"resource\":\"pods\"" },
        { "field not-equals and an escaped comma", "GET", "/api/v1/pods?fieldSelector=spec.nodeName!%3Dn1,metadata.namespace%3Da%5C,b",
            "\"verb\":\"list\",\"version\":\"v1\",\"resource\":\"pods\",\"fieldSelector\":{\"requirements\":[{\"key\":\"metadata.namespace\",\"operator\":\"In\",\"values\":[\"a,b\"]},{\"key\":\"spec.nodeName\",\"operator\":\"NotIn\",\"values\":[\"n1\"]}]}" },
        { "invalid label value", "GET", "/api/v1/pods?labelSelector=env%3D-prod", "\"verb\":\"list\",\"version\":\"v1\",\"resource\":\"pods\"" },
        { "get by name ignores selectors", "GET", "/api/v1/namespaces/dev/pods/web-1?labelSelector=a%3Db", "\"namespace\":\"dev\",\"verb\":\"get\",\"version\":\"v1\",\"resource\":\"pods\",\"name\":\"web-1\"" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task The_webhook_receives_the_selector_requirements_kube_apiserver_sends(string name, string method, string url, string resourceAttributes)
    {
        await using var server = await SarServer.StartAsync().WaitAsync(TimeSpan.FromSeconds(20));
        using var webhook = WebhookAuthorizer.Create(server.KubeconfigPath, new WebhookAuthorizerOptions { Version = "v1" });
        var question = url.IndexOf('?', StringComparison.Ordinal);
        var request = RequestInfoParser.Parse(method, question < 0 ? url : url[..question], question < 0 ? "" : url[(question + 1)..]);

        var result = await webhook.AuthorizeAsync(new AuthorizationAttributes(UserInfo.Create("jane", []), request), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(result.IsAllowed, name);
        var (body, _) = Assert.Single(server.Requests);
        Assert.Equal(Head + resourceAttributes + Tail, body);
    }

    [Fact]
    public async Task V1beta1_reviews_carry_the_same_selectors()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(TimeSpan.FromSeconds(20));
        using var webhook = WebhookAuthorizer.Create(server.KubeconfigPath, new WebhookAuthorizerOptions { Version = "v1beta1" });
        var request = RequestInfoParser.Parse("GET", "/api/v1/pods", "labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1");

        await webhook.AuthorizeAsync(new AuthorizationAttributes(UserInfo.Create("jane", ["dev"]), request), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(20));

        var (body, _) = Assert.Single(server.Requests);
        Assert.Equal("""{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1beta1","metadata":{},"spec":{"resourceAttributes":{"verb":"list","version":"v1","resource":"pods","fieldSelector":{"requirements":[{"key":"spec.nodeName","operator":"In","values":["n1"]}]},"labelSelector":{"requirements":[{"key":"app","operator":"In","values":["web"]}]}},"user":"jane","group":["dev"]},"status":{"allowed":false}}""" + "\n", body);
    }

    [Fact]
    public async Task A_narrower_list_is_a_different_question_not_a_cached_answer_of_the_wider_one()
    {
        await using var server = await SarServer.StartAsync().WaitAsync(TimeSpan.FromSeconds(20));
        using var webhook = WebhookAuthorizer.Create(server.KubeconfigPath, new WebhookAuthorizerOptions { Version = "v1" });
        var user = UserInfo.Create("jane", []);
        Task Ask(string query) => webhook.AuthorizeAsync(new AuthorizationAttributes(user, RequestInfoParser.Parse("GET", "/api/v1/pods", query)), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(20));

        await Ask("");
        await Ask("fieldSelector=spec.nodeName%3Dn1");
        await Ask("fieldSelector=spec.nodeName%3Dn1");

        Assert.Equal(2, server.Requests.Count);
    }

    // labels.Parse and fields.ParseSelector on their own, with the cases of k8s.io/apimachinery's selector tests
    [Theory]
    [InlineData("x=a,y=b,z=c", "x = a|y = b|z = c")]
    [InlineData("", "")]
    [InlineData("x!=a,y=b", "x != a|y = b")]
    [InlineData("x=", "x = ")]
    [InlineData("x= ", "x = ")]
    [InlineData("x in (a)", "x in a")]
    [InlineData("x in (a,,b)", "x in ,a,b")]
    [InlineData("x in ()", "x in ")]
    [InlineData("x notin (a)", "x notin a")]
    [InlineData("x in (in)", "x in in")]
    [InlineData("!x", "x ! ")]
    [InlineData("x>1", "x gt 1")]
    [InlineData("x<-1", null)] // -1 is an integer but not a label value
    [InlineData("x>1.1", null)]
    [InlineData("x=a||y=b", null)]
    [InlineData("x==a==b", null)]
    [InlineData("!x=a", null)]
    [InlineData("x!=a,y in (a", null)]
    [InlineData("x,", null)]
    [InlineData("x in (a) y", null)]
    [InlineData("example.com/x=1", "example.com/x = 1")]
    [InlineData("Example.com/x=1", null)]
    [InlineData("a/b/c", null)]
    public void Label_selectors_parse_as_labels_Parse(string selector, string? expected)
    {
        var parsed = LabelSelectorParser.Parse(selector, out var error);
        Assert.Equal(expected, parsed is null ? null : string.Join("|", parsed.Select(r => $"{r.Key} {r.Operator} {string.Join(",", r.Values)}")));
        Assert.Equal(parsed is null, error.Length > 0);
    }

    [Theory]
    [InlineData("a=b,c!=d", "a = b|c != d")]
    [InlineData("c!=d,a==b", "a = b|c != d")]
    [InlineData("a=b\\,c", "a = b,c")]
    [InlineData(",,a=b,", "a = b")]
    [InlineData("=", "")]
    [InlineData("=x", " = x")]
    [InlineData("a\\=b=c", null)] // the left side has no escapes: "a\" = "b=c", and a bare = in a value is an error
    [InlineData("a=b\\x", null)]
    [InlineData("ab", null)]
    public void Field_selectors_parse_as_fields_ParseSelector(string selector, string? expected)
    {
        var parsed = FieldSelectorParser.Parse(selector, out var error);
        Assert.Equal(expected, parsed is null ? null : string.Join("|", parsed.Select(r => $"{r.Key} {r.Operator} {string.Join(",", r.Values)}")));
        Assert.Equal(parsed is null, error.Length > 0);
    }
}
