using System.Net;

namespace Portcullis.Sandbox.Storage;

/// <summary>A failure answered to the client as a Kubernetes Status object.</summary>
public sealed class ApiException : Exception
{
    /// <summary>Creates a failure with the Status fields it is answered with.</summary>
    public ApiException(HttpStatusCode code, string reason, string message, string? name = null, ResourceType? resource = null)
        : base(message)
    {
        Code = code;
        Reason = reason;
        Name = name;
        Resource = resource;
    }

    /// <summary>The HTTP status code, also Status.code.</summary>
    public HttpStatusCode Code { get; }

    /// <summary>Status.reason, e.g. NotFound, AlreadyExists, Conflict.</summary>
    public string Reason { get; }

    /// <summary>Status.details.name, when the failure is about one object.</summary>
    public string? Name { get; }

    /// <summary>The resource in Status.details (kind = plural resource, group).</summary>
    public ResourceType? Resource { get; }

    /// <summary>404 <c>pods "x" not found</c>.</summary>
    public static ApiException NotFound(ResourceType type, string name) =>
        new(HttpStatusCode.NotFound, "NotFound", $"{type.QualifiedResource} \"{name}\" not found", name, type);

    /// <summary>409 <c>pods "x" already exists</c>.</summary>
    public static ApiException AlreadyExists(ResourceType type, string name) =>
        new(HttpStatusCode.Conflict, "AlreadyExists", $"{type.QualifiedResource} \"{name}\" already exists", name, type);

    /// <summary>409 optimistic-concurrency conflict on update.</summary>
    public static ApiException Conflict(ResourceType type, string name) =>
        new(HttpStatusCode.Conflict, "Conflict",
            $"Operation cannot be fulfilled on {type.QualifiedResource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            name, type);

    /// <summary>400 BadRequest with the given message.</summary>
    public static ApiException BadRequest(string message) => new(HttpStatusCode.BadRequest, "BadRequest", message);

    /// <summary>422 Invalid about one object.</summary>
    public static ApiException Invalid(ResourceType type, string name, string detail) =>
        new(HttpStatusCode.UnprocessableEntity, "Invalid", $"{type.Kind} \"{name}\" is invalid: {detail}", name, type);
}
