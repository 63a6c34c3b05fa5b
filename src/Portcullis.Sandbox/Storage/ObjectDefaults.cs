using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Portcullis.Sandbox.Storage;

/// <summary>
/// What kube-apiserver's defaulting and admission, the scheduler and the kubelet add to a new object, so that the
/// official clients' strict models accept every object the sandbox serves: Debian's python3-kubernetes refuses a
/// ContainerStatus without <c>image</c>, <c>imageID</c>, <c>name</c>, <c>ready</c> and <c>restartCount</c>, a
/// PodCondition without <c>type</c> and <c>status</c>, a Container without <c>name</c>. Only fields the client did
/// not send are filled.
/// </summary>
internal static class ObjectDefaults
{
    /// <summary>The node every pod is "scheduled" to.</summary>
    public const string NodeName = "sandbox-node";

    /// <summary>The node's address (status.hostIP).</summary>
    public const string HostIp = "10.0.0.2";

    /// <summary>Fills the defaults of <paramref name="type"/> into a new object; <paramref name="podNumber"/> numbers pod IPs.</summary>
    public static void Apply(ResourceType type, JsonObject obj, string now, Func<int> podNumber)
    {
        if (type == ResourceTypes.Namespaces)
        {
            // The namespace lifecycle: the "kubernetes" finalizer and phase Active.
            var spec = Child(obj, "spec");
            spec["finalizers"] ??= new JsonArray("kubernetes");
            if (obj["status"]?["phase"] is null)
            {
                obj["status"] = new JsonObject { ["phase"] = "Active" };
            }
        }
        else if (type == ResourceTypes.Pods)
        {
            DefaultPodSpec(Child(obj, "spec"));
            if (obj["status"]?["phase"] is null)
            {
                obj["status"] = RunningStatus((JsonObject)obj["spec"]!, now, podNumber());
            }
        }
        else if (type == ResourceTypes.Secrets)
        {
            obj["type"] ??= "Opaque";
        }
        else if (type == ResourceTypes.Events)
        {
            // core/v1 Event: involvedObject is required (the models refuse an Event without it); kube-apiserver
            // answers 422 for one without.
            if (obj["involvedObject"] is not JsonObject)
            {
                var name = obj["metadata"]?["name"]?.GetValue<string>() ?? "";
                throw ApiException.Invalid(type, name, "involvedObject: Required value");
            }
            obj["reportingComponent"] ??= "";
            obj["reportingInstance"] ??= "";
        }
        else if (type == ResourceTypes.Deployments && obj["status"] is null)
        {
            var replicas = obj["spec"]?["replicas"] is JsonValue r && r.GetValueKind() == JsonValueKind.Number ? r.ToJsonString() : "1";
            obj["status"] = new JsonObject
            {
                ["observedGeneration"] = 1,
                ["replicas"] = JsonNode.Parse(replicas),
                ["updatedReplicas"] = JsonNode.Parse(replicas),
                ["readyReplicas"] = JsonNode.Parse(replicas),
                ["availableReplicas"] = JsonNode.Parse(replicas),
            };
        }
    }

    /// <summary>
    /// The image a containerd kubelet reports: a name without a registry is Docker Hub's, one without a path is in
    /// <c>library/</c>, one without a tag or digest is <c>:latest</c> (<c>nginx</c> → <c>docker.io/library/nginx:latest</c>).
    /// </summary>
    public static string NormalizeImage(string image)
    {
        var name = image;
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? "" : name[..slash];
        if (slash < 0)
        {
            name = "docker.io/library/" + name;
        }
        else if (!(first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost"))
        {
            name = "docker.io/" + name;
        }
        var lastSegment = name[(name.LastIndexOf('/') + 1)..];
        if (!lastSegment.Contains(':', StringComparison.Ordinal) && !name.Contains('@', StringComparison.Ordinal))
        {
            name += ":latest";
        }
        return name;
    }

    /// <summary>
    /// The image ID a containerd kubelet reports: the repository and a digest (here the SHA-256 of the normalised
    /// name, so the same image always has the same ID), e.g. <c>docker.io/sandbox/echo@sha256:…</c>.
    /// </summary>
    public static string ImageId(string image)
    {
        var normalized = NormalizeImage(image);
        if (normalized.Contains('@', StringComparison.Ordinal))
        {
            return normalized;
        }
        var lastSlash = normalized.LastIndexOf('/');
        var colon = normalized.IndexOf(':', lastSlash + 1);
        var repository = colon < 0 ? normalized : normalized[..colon];
        return repository + "@sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(normalized)));
    }

    // kube-apiserver's defaulting (SetDefaults_PodSpec, SetDefaults_Container), the ServiceAccount and
    // DefaultTolerationSeconds admission plugins, and the scheduler's binding.
    private static void DefaultPodSpec(JsonObject spec)
    {
        if (spec["containers"] is not JsonArray { Count: > 0 })
        {
            spec["containers"] = new JsonArray(new JsonObject { ["name"] = "main", ["image"] = "sandbox/echo:latest" });
        }
        foreach (var container in spec["containers"]!.AsArray().OfType<JsonObject>())
        {
            var image = container["image"]?.GetValue<string>() ?? "";
            container["imagePullPolicy"] ??= PullsAlways(image) ? "Always" : "IfNotPresent";
            container["resources"] ??= new JsonObject();
            container["terminationMessagePath"] ??= "/dev/termination-log";
            container["terminationMessagePolicy"] ??= "File";
            if (container["ports"] is JsonArray ports)
            {
                foreach (var port in ports.OfType<JsonObject>())
                {
                    port["protocol"] ??= "TCP";
                }
            }
        }
        spec["restartPolicy"] ??= "Always";
        spec["terminationGracePeriodSeconds"] ??= 30;
        spec["dnsPolicy"] ??= "ClusterFirst";
        spec["securityContext"] ??= new JsonObject();
        spec["schedulerName"] ??= "default-scheduler";
        spec["serviceAccountName"] ??= "default";
        spec["enableServiceLinks"] ??= true;
        spec["priority"] ??= 0;
        spec["preemptionPolicy"] ??= "PreemptLowerPriority";
        spec["tolerations"] ??= new JsonArray(
            Toleration("node.kubernetes.io/not-ready"),
            Toleration("node.kubernetes.io/unreachable"));
        spec["nodeName"] ??= NodeName;
    }

    private static JsonObject Toleration(string key) => new()
    {
        ["key"] = key,
        ["operator"] = "Exists",
        ["effect"] = "NoExecute",
        ["tolerationSeconds"] = 300,
    };

    // Always for ":latest" or no tag (and no digest), IfNotPresent otherwise.
    private static bool PullsAlways(string image)
    {
        if (image.Contains('@', StringComparison.Ordinal))
        {
            return false;
        }
        var lastSegment = image[(image.LastIndexOf('/') + 1)..];
        var colon = lastSegment.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 || lastSegment[(colon + 1)..] == "latest";
    }

    // What the kubelet reports for a pod whose containers all started: every condition True, one running status per container.
    private static JsonObject RunningStatus(JsonObject spec, string now, int n)
    {
        var podIp = $"10.244.{n / 250}.{(n % 250) + 2}";
        var statuses = new JsonArray();
        var anyResources = false;
        foreach (var container in spec["containers"]!.AsArray().OfType<JsonObject>())
        {
            var image = container["image"]?.GetValue<string>() ?? "";
            anyResources |= container["resources"] is JsonObject { Count: > 0 };
            statuses.Add(new JsonObject
            {
                ["name"] = container["name"]?.DeepClone(),
                ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = now } },
                ["lastState"] = new JsonObject(),
                ["ready"] = true,
                ["restartCount"] = 0,
                ["image"] = NormalizeImage(image),
                ["imageID"] = ImageId(image),
                ["containerID"] = "containerd://" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
                ["started"] = true,
            });
        }
        var conditions = new JsonArray();
        foreach (var condition in (string[])["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"])
        {
            conditions.Add(new JsonObject
            {
                ["type"] = condition,
                ["status"] = "True",
                ["lastProbeTime"] = null,
                ["lastTransitionTime"] = now,
            });
        }
        return new JsonObject
        {
            ["phase"] = "Running",
            ["conditions"] = conditions,
            ["hostIP"] = HostIp,
            ["hostIPs"] = new JsonArray(new JsonObject { ["ip"] = HostIp }),
            ["podIP"] = podIp,
            ["podIPs"] = new JsonArray(new JsonObject { ["ip"] = podIp }),
            ["startTime"] = now,
            ["containerStatuses"] = statuses,
            // BestEffort without requests or limits; the sandbox does not compare them, so any resources make Burstable.
            ["qosClass"] = anyResources ? "Burstable" : "BestEffort",
        };
    }

    private static JsonObject Child(JsonObject obj, string name)
    {
        if (obj[name] is JsonObject child)
        {
            return child;
        }
        child = [];
        obj[name] = child;
        return child;
    }
}
