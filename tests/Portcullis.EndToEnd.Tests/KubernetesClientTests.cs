using System.Net;
using k8s;
using k8s.Autorest;
using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>The KubernetesClient NuGet package as a second real client, with the demo's kubeconfigs.</summary>
[Collection(DemoCollection.Name)]
public sealed class KubernetesClientTests(DemoFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Admin_Lists_Creates_Gets_And_Deletes_Pods()
    {
        using var client = fixture.KubernetesClient("admin");
        var name = $"e2e-csharp-{Guid.NewGuid():N}"[..24];

        var version = await client.Version.GetCodeAsync().WaitAsync(Timeout);
        var before = await client.CoreV1.ListNamespacedPodAsync("dev").WaitAsync(Timeout);
        await client.CoreV1.CreateNamespacedPodAsync(KubectlTests.NewPod(name), "dev").WaitAsync(Timeout);
        var fetched = await client.CoreV1.ReadNamespacedPodAsync(name, "dev").WaitAsync(Timeout);
        await client.CoreV1.DeleteNamespacedPodAsync(name, "dev").WaitAsync(Timeout);
        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => client.CoreV1.ReadNamespacedPodAsync(name, "dev").WaitAsync(Timeout));

        Assert.Equal("1", version.Major);
        Assert.Contains(before.Items, p => p.Metadata.Name == "web-1");
        Assert.Equal("admin", fetched.Metadata.Annotations["sandbox.portcullis.dev/created-by"]);
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);
    }

    [Fact]
    public async Task Jane_Lists_Pods_In_Dev()
    {
        using var client = fixture.KubernetesClient("jane");

        var pods = await client.CoreV1.ListNamespacedPodAsync("dev").WaitAsync(Timeout);

        Assert.Contains(pods.Items, p => p.Metadata.Name == "web-1");
    }

    [Fact]
    public async Task Jane_Reading_A_Secret_In_Prod_Is_Forbidden()
    {
        using var client = fixture.KubernetesClient("jane");

        var error = await Assert.ThrowsAsync<HttpOperationException>(() =>
            client.CoreV1.ReadNamespacedSecretAsync("db-credentials", "prod").WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.Forbidden, error.Response.StatusCode);
        Assert.Contains("secrets \\\"db-credentials\\\" is forbidden: User \\\"jane\\\" cannot get resource \\\"secrets\\\" in API group \\\"\\\" in the namespace \\\"prod\\\"",
            error.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CiBot_Token_Is_Authenticated_But_May_Not_Read_Secrets()
    {
        using var client = fixture.KubernetesClient("ci-bot");

        var error = await Assert.ThrowsAsync<HttpOperationException>(() =>
            client.CoreV1.ListNamespacedSecretAsync("prod").WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.Forbidden, error.Response.StatusCode);
        Assert.Contains("User \\\"ci-bot\\\" cannot list resource \\\"secrets\\\"", error.Response.Content, StringComparison.Ordinal);
    }
}
