using System.Text;
using System.Text.Json.Nodes;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox;

/// <summary>Builders for the demo objects.</summary>
internal static class Seeding
{
    public static void SeedDefaults(ObjectStore store)
    {
        foreach (var ns in (string[])["default", "kube-system", "dev", "prod"])
        {
            Namespace(store, ns, new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = ns });
            store.Create(ResourceTypes.ServiceAccounts, ns, new JsonObject { ["metadata"] = new JsonObject { ["name"] = "default" } }, SandboxServer.SeedUser);
        }
        Pod(store, "dev", "web-1", new Dictionary<string, string> { ["app"] = "web", ["tier"] = "frontend" });
        Pod(store, "dev", "web-2", new Dictionary<string, string> { ["app"] = "web", ["tier"] = "frontend" });
        Pod(store, "dev", "db-0", new Dictionary<string, string> { ["app"] = "db", ["tier"] = "backend" });
        Pod(store, "prod", "web-1", new Dictionary<string, string> { ["app"] = "web", ["tier"] = "frontend" });
        Pod(store, "prod", "api-1", new Dictionary<string, string> { ["app"] = "api", ["tier"] = "backend" });
        Pod(store, "kube-system", "coredns-0", new Dictionary<string, string> { ["k8s-app"] = "kube-dns" });
        Secret(store, "prod", "db-credentials", new Dictionary<string, string> { ["username"] = "app", ["password"] = "not-a-real-password" });
        ConfigMap(store, "dev", "app-config", new Dictionary<string, string> { ["LOG_LEVEL"] = "debug", ["FEATURE_FLAGS"] = "new-ui" });
    }

    public static JsonObject Namespace(ObjectStore store, string name, IReadOnlyDictionary<string, string>? labels) =>
        store.Create(ResourceTypes.Namespaces, null, new JsonObject { ["metadata"] = Metadata(name, labels) }, SandboxServer.SeedUser);

    public static JsonObject Pod(ObjectStore store, string ns, string name, IReadOnlyDictionary<string, string>? labels) =>
        store.Create(ResourceTypes.Pods, ns, new JsonObject
        {
            ["metadata"] = Metadata(name, labels),
            ["spec"] = new JsonObject
            {
                ["containers"] = new JsonArray(new JsonObject
                {
                    ["name"] = "main",
                    ["image"] = "sandbox/echo:latest",
                    ["ports"] = new JsonArray(new JsonObject { ["containerPort"] = 8080, ["protocol"] = "TCP" }),
                }),
                ["serviceAccountName"] = "default",
                ["nodeName"] = "sandbox-node",
            },
        }, SandboxServer.SeedUser);

    public static JsonObject ConfigMap(ObjectStore store, string ns, string name, IReadOnlyDictionary<string, string> data) =>
        store.Create(ResourceTypes.ConfigMaps, ns, new JsonObject
        {
            ["metadata"] = Metadata(name, null),
            ["data"] = Map(data, v => v),
        }, SandboxServer.SeedUser);

    public static JsonObject Secret(ObjectStore store, string ns, string name, IReadOnlyDictionary<string, string> data) =>
        store.Create(ResourceTypes.Secrets, ns, new JsonObject
        {
            ["metadata"] = Metadata(name, null),
            ["type"] = "Opaque",
            ["data"] = Map(data, v => Convert.ToBase64String(Encoding.UTF8.GetBytes(v))),
        }, SandboxServer.SeedUser);

    private static JsonObject Metadata(string name, IReadOnlyDictionary<string, string>? labels)
    {
        var metadata = new JsonObject { ["name"] = name };
        if (labels is { Count: > 0 })
        {
            metadata["labels"] = Map(labels, v => v);
        }
        return metadata;
    }

    private static JsonObject Map(IReadOnlyDictionary<string, string> values, Func<string, string> convert)
    {
        var map = new JsonObject();
        foreach (var (key, value) in values)
        {
            map[key] = convert(value);
        }
        return map;
    }
}
