namespace Portcullis.Audit;

/// <summary>How much of a request an audit event records (<c>audit.k8s.io/v1</c> Level), in increasing order.</summary>
public enum AuditLevel
{
    /// <summary>No event.</summary>
    None = 0,
    /// <summary>Request metadata, annotations and response status; no bodies.</summary>
    Metadata = 1,
    /// <summary>Metadata plus the request object.</summary>
    Request = 2,
    /// <summary>Metadata plus request and response objects.</summary>
    RequestResponse = 3,
}

/// <summary>The point in request handling an event is emitted at (<c>audit.k8s.io/v1</c> Stage).</summary>
public enum AuditStage
{
    RequestReceived = 0,
    ResponseStarted = 1,
    ResponseComplete = 2,
    Panic = 3,
}

/// <summary>A set of <see cref="AuditStage"/> values, as the policy's <c>omitStages</c>.</summary>
[Flags]
public enum AuditStages
{
    None = 0,
    RequestReceived = 1 << AuditStage.RequestReceived,
    ResponseStarted = 1 << AuditStage.ResponseStarted,
    ResponseComplete = 1 << AuditStage.ResponseComplete,
    Panic = 1 << AuditStage.Panic,
}

/// <summary>Names and conversions for levels and stages exactly as the API spells them.</summary>
public static class AuditNames
{
    private static readonly string[] LevelNames = ["None", "Metadata", "Request", "RequestResponse"];
    private static readonly string[] StageNames = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"];

    public static string Name(this AuditLevel level) => LevelNames[(int)level];

    public static string Name(this AuditStage stage) => StageNames[(int)stage];

    public static AuditStages ToSet(this AuditStage stage) => (AuditStages)(1 << (int)stage);

    public static bool Contains(this AuditStages set, AuditStage stage) => (set & stage.ToSet()) != 0;

    public static bool TryParseLevel(string? text, out AuditLevel level)
    {
        var i = Array.IndexOf(LevelNames, text);
        level = i < 0 ? AuditLevel.None : (AuditLevel)i;
        return i >= 0;
    }

    public static bool TryParseStage(string? text, out AuditStage stage)
    {
        var i = Array.IndexOf(StageNames, text);
        stage = i < 0 ? AuditStage.RequestReceived : (AuditStage)i;
        return i >= 0;
    }

    /// <summary>The stage names in a set, in API order (for docs and tests).</summary>
    public static IReadOnlyList<string> Names(this AuditStages set)
    {
        var names = new List<string>(4);
        for (var i = 0; i < StageNames.Length; i++)
        {
            if (((int)set & (1 << i)) != 0)
            {
                names.Add(StageNames[i]);
            }
        }
        return names;
    }
}
