using k8s;
using Portcullis.Check;

namespace Portcullis.Cli.Check;

/// <summary>
/// Reads kube-apiserver's flags from a live cluster: the kube-system Pods labelled component=kube-apiserver (what
/// <c>kubectl -n kube-system get pods -l component=kube-apiserver -o yaml</c> shows), plus APF objects and the
/// default/kubernetes Service.
/// </summary>
internal static class LiveClusterReader
{
    public static async Task<(ApiServerInput? Input, string? Error)> ReadAsync(string kubeconfig, string? context, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var ct = cts.Token;
        KubernetesClientConfiguration config;
        try
        {
            config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig, currentContext: context);
        }
        catch (Exception ex)
        {
            return (null, $"{kubeconfig}: cannot be used: {ex.Message}");
        }
        using var client = new Kubernetes(config);
        var source = $"{kubeconfig}{(context is null ? "" : " context " + context)} ({config.Host})";
        k8s.Models.V1PodList pods;
        try
        {
            pods = await client.CoreV1.ListNamespacedPodAsync("kube-system", labelSelector: "component=kube-apiserver", cancellationToken: ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return (null, $"{source}: no answer within {timeout.TotalSeconds:0}s listing kube-system pods");
        }
        catch (Exception ex)
        {
            return (null, $"{source}: cannot list kube-system pods: {ex.Message}");
        }
        var pod = pods.Items.FirstOrDefault();
        var container = pod?.Spec.Containers.FirstOrDefault(c => c.Name == "kube-apiserver") ?? pod?.Spec.Containers.FirstOrDefault();
        if (container is null)
        {
            return (null, $"{source}: no Pod labelled component=kube-apiserver in kube-system (a managed control plane hides it; use 'portcullis probe {config.Host}' instead)");
        }
        var flags = ApiServerFlags.FromArguments((container.Command ?? []).Concat(container.Args ?? []));

        var problems = new List<string>();
        IReadOnlyList<string>? flowSchemas = null, priorityLevels = null;
        string? serviceType = null;
        var external = new List<string>();
        try
        {
            flowSchemas = (await client.FlowcontrolApiserverV1.ListFlowSchemaAsync(cancellationToken: ct).ConfigureAwait(false)).Items.Select(i => i.Metadata.Name).ToList();
            priorityLevels = (await client.FlowcontrolApiserverV1.ListPriorityLevelConfigurationAsync(cancellationToken: ct).ConfigureAwait(false)).Items.Select(i => i.Metadata.Name).ToList();
        }
        catch (Exception ex)
        {
            problems.Add($"APF objects: {ex.Message}");
        }
        try
        {
            var service = await client.CoreV1.ReadNamespacedServiceAsync("kubernetes", "default", cancellationToken: ct).ConfigureAwait(false);
            serviceType = service.Spec.Type ?? "ClusterIP";
            external.AddRange(service.Spec.ExternalIPs ?? []);
            external.AddRange((service.Status?.LoadBalancer?.Ingress ?? []).Select(i => i.Ip ?? i.Hostname));
        }
        catch (Exception ex)
        {
            problems.Add($"default/kubernetes Service: {ex.Message}");
        }
        var live = new LiveClusterFacts(flowSchemas, priorityLevels, serviceType, external, problems);
        return (new ApiServerInput($"{source} pod kube-system/{pod!.Metadata.Name}", InputKind.LiveCluster, flags, ReferencedFiles.None, live), null);
    }
}
