using System.Text.Json.Nodes;
using Portcullis.Authentication;
using Portcullis.Authorization.Review;

namespace Portcullis.Authorization.Tests;

public class SelfSubjectAccessReviewTests(RbacFixture fixture) : IClassFixture<RbacFixture>
{
    private const string CanIListSecrets = """
        {"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
         "spec":{"resourceAttributes":{"namespace":"team-a","verb":"list","resource":"secrets"}},"status":{"allowed":false}}
        """;

    [Fact]
    public void The_ssar_create_request_is_recognised()
    {
        Assert.True(SelfSubjectAccessReviews.IsSelfSubjectAccessReview(RequestInfoParser.Parse("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "")));
        Assert.False(SelfSubjectAccessReviews.IsSelfSubjectAccessReview(RequestInfoParser.Parse("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", "")));
    }

    [Fact]
    public async Task Can_i_says_no_when_the_gateway_would_refuse()
    {
        Assert.True(SelfSubjectAccessReviews.TryParse(CanIListSecrets, out var request, out var error), error);
        var vera = UserInfo.Create("vera", [UserInfo.AuthenticatedGroup]);
        var result = await fixture.Chain.AuthorizeAsync(new AuthorizationAttributes(vera, request!), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(result.IsAllowed);
        var response = JsonNode.Parse(SelfSubjectAccessReviews.NotAllowedResponse(CanIListSecrets, result))!;
        Assert.False(response["status"]!["allowed"]!.GetValue<bool>());
        Assert.Equal("secrets", response["spec"]!["resourceAttributes"]!["resource"]!.GetValue<string>());

        var dev = UserInfo.Create("dev1", ["team-a-devs", UserInfo.AuthenticatedGroup]);
        var allowed = await fixture.Chain.AuthorizeAsync(new AuthorizationAttributes(dev, request!), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(allowed.IsAllowed); // the gateway forwards; the upstream's answer decides
    }

    [Fact]
    public void Non_resource_and_invalid_specs()
    {
        Assert.True(SelfSubjectAccessReviews.TryParse("""{"spec":{"nonResourceAttributes":{"path":"/metrics","verb":"get"}}}""", out var r, out _));
        Assert.False(r!.IsResourceRequest);
        Assert.Equal("/metrics", r.Path);
        Assert.False(SelfSubjectAccessReviews.TryParse("""{"spec":{}}""", out _, out var error));
        Assert.Equal("exactly one of nonResourceAttributes or resourceAttributes must be specified", error);
        Assert.False(SelfSubjectAccessReviews.TryParse("not json", out _, out _));
    }
}
