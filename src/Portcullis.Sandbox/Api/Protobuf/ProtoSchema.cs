using System.Collections.Frozen;

namespace Portcullis.Sandbox.Api.Protobuf;

/// <summary>How one protobuf field is read into JSON.</summary>
internal enum ProtoKind
{
    String,
    Bytes,
    Int,
    Bool,
    Message,
    MapString,
    MapBytes,
    Time,
}

/// <summary>A field of a message: its number, JSON name, kind, and for messages their schema.</summary>
internal sealed record ProtoField(int Number, string Name, ProtoKind Kind, bool Repeated = false, ProtoMessage? Message = null);

/// <summary>A message schema: the fields the sandbox understands. Unknown fields are skipped.</summary>
internal sealed class ProtoMessage
{
    private readonly FrozenDictionary<int, ProtoField> _fields;

    public ProtoMessage(params ProtoField[] fields) => _fields = fields.ToFrozenDictionary(f => f.Number);

    public ProtoField? Field(int number) => _fields.GetValueOrDefault(number);
}

/// <summary>
/// The subset of the Kubernetes protobuf schemas (k8s.io/api generated.proto field numbers) needed for
/// the objects kubectl's typed clients create: namespaces, configmaps, secrets, serviceaccounts, pods,
/// deployments and leases. Fields not listed here are dropped.
/// </summary>
internal static class ProtoSchemas
{
    private static readonly ProtoMessage ObjectMeta = new(
        new(1, "name", ProtoKind.String),
        new(2, "generateName", ProtoKind.String),
        new(3, "namespace", ProtoKind.String),
        new(5, "uid", ProtoKind.String),
        new(6, "resourceVersion", ProtoKind.String),
        new(7, "generation", ProtoKind.Int),
        new(11, "labels", ProtoKind.MapString),
        new(12, "annotations", ProtoKind.MapString),
        new(14, "finalizers", ProtoKind.String, Repeated: true));

    private static readonly ProtoMessage LabelSelector = new(new ProtoField(1, "matchLabels", ProtoKind.MapString));

    private static readonly ProtoMessage ContainerPort = new(
        new(1, "name", ProtoKind.String),
        new(2, "hostPort", ProtoKind.Int),
        new(3, "containerPort", ProtoKind.Int),
        new(4, "protocol", ProtoKind.String));

    private static readonly ProtoMessage EnvVar = new(
        new(1, "name", ProtoKind.String),
        new(2, "value", ProtoKind.String));

    private static readonly ProtoMessage Container = new(
        new(1, "name", ProtoKind.String),
        new(2, "image", ProtoKind.String),
        new(3, "command", ProtoKind.String, Repeated: true),
        new(4, "args", ProtoKind.String, Repeated: true),
        new(5, "workingDir", ProtoKind.String),
        new(6, "ports", ProtoKind.Message, Repeated: true, Message: ContainerPort),
        new(7, "env", ProtoKind.Message, Repeated: true, Message: EnvVar),
        new(13, "terminationMessagePath", ProtoKind.String),
        new(14, "imagePullPolicy", ProtoKind.String),
        new(16, "stdin", ProtoKind.Bool),
        new(17, "stdinOnce", ProtoKind.Bool),
        new(18, "tty", ProtoKind.Bool),
        new(20, "terminationMessagePolicy", ProtoKind.String));

    private static readonly ProtoMessage PodSpec = new(
        new(2, "containers", ProtoKind.Message, Repeated: true, Message: Container),
        new(3, "restartPolicy", ProtoKind.String),
        new(4, "terminationGracePeriodSeconds", ProtoKind.Int),
        new(6, "dnsPolicy", ProtoKind.String),
        new(7, "nodeSelector", ProtoKind.MapString),
        new(8, "serviceAccountName", ProtoKind.String),
        new(10, "nodeName", ProtoKind.String));

    private static readonly ProtoMessage PodTemplateSpec = new(
        new(1, "metadata", ProtoKind.Message, Message: ObjectMeta),
        new(2, "spec", ProtoKind.Message, Message: PodSpec));

    private static readonly ProtoMessage DeploymentStrategy = new(new ProtoField(1, "type", ProtoKind.String));

    private static readonly ProtoMessage DeploymentSpec = new(
        new(1, "replicas", ProtoKind.Int),
        new(2, "selector", ProtoKind.Message, Message: LabelSelector),
        new(3, "template", ProtoKind.Message, Message: PodTemplateSpec),
        new(4, "strategy", ProtoKind.Message, Message: DeploymentStrategy),
        new(5, "minReadySeconds", ProtoKind.Int),
        new(6, "revisionHistoryLimit", ProtoKind.Int),
        new(7, "paused", ProtoKind.Bool),
        new(9, "progressDeadlineSeconds", ProtoKind.Int));

    private static readonly ProtoMessage NamespaceSpec = new(new ProtoField(1, "finalizers", ProtoKind.String, Repeated: true));

    private static readonly ProtoMessage ObjectReference = new(
        new(1, "kind", ProtoKind.String),
        new(2, "namespace", ProtoKind.String),
        new(3, "name", ProtoKind.String));

    private static readonly ProtoMessage LocalObjectReference = new(new ProtoField(1, "name", ProtoKind.String));

    private static readonly ProtoMessage LeaseSpec = new(
        new(1, "holderIdentity", ProtoKind.String),
        new(2, "leaseDurationSeconds", ProtoKind.Int),
        new(3, "acquireTime", ProtoKind.Time),
        new(4, "renewTime", ProtoKind.Time),
        new(5, "leaseTransitions", ProtoKind.Int));

    private static ProtoField Metadata => new(1, "metadata", ProtoKind.Message, Message: ObjectMeta);

    /// <summary>Schemas by "apiVersion/Kind".</summary>
    public static readonly FrozenDictionary<string, ProtoMessage> ByKind = new Dictionary<string, ProtoMessage>
    {
        ["v1/Namespace"] = new(Metadata, new ProtoField(2, "spec", ProtoKind.Message, Message: NamespaceSpec)),
        ["v1/ConfigMap"] = new(Metadata,
            new ProtoField(2, "data", ProtoKind.MapString),
            new ProtoField(3, "binaryData", ProtoKind.MapBytes),
            new ProtoField(4, "immutable", ProtoKind.Bool)),
        ["v1/Secret"] = new(Metadata,
            new ProtoField(2, "data", ProtoKind.MapBytes),
            new ProtoField(3, "type", ProtoKind.String),
            new ProtoField(4, "stringData", ProtoKind.MapString),
            new ProtoField(5, "immutable", ProtoKind.Bool)),
        ["v1/ServiceAccount"] = new(Metadata,
            new ProtoField(2, "secrets", ProtoKind.Message, Repeated: true, Message: ObjectReference),
            new ProtoField(3, "imagePullSecrets", ProtoKind.Message, Repeated: true, Message: LocalObjectReference),
            new ProtoField(4, "automountServiceAccountToken", ProtoKind.Bool)),
        ["v1/Pod"] = new(Metadata, new ProtoField(2, "spec", ProtoKind.Message, Message: PodSpec)),
        ["apps/v1/Deployment"] = new(Metadata, new ProtoField(2, "spec", ProtoKind.Message, Message: DeploymentSpec)),
        ["coordination.k8s.io/v1/Lease"] = new(Metadata, new ProtoField(2, "spec", ProtoKind.Message, Message: LeaseSpec)),
    }.ToFrozenDictionary(StringComparer.Ordinal);
}
