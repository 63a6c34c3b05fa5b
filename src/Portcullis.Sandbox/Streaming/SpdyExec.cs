using System.Net;
using Microsoft.AspNetCore.Http;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Streaming;

/// <summary>SPDY/3.1 transport for exec and attach.</summary>
internal static class SpdyExec
{
    public static Task HandleAsync(HttpContext context, IReadOnlyList<string> command, bool stdin, CancellationToken stopping) =>
        throw new ApiException(HttpStatusCode.BadRequest, "BadRequest",
            "the sandbox does not implement SPDY/3.1 streams yet; use WebSocket (v5.channel.k8s.io or v4.channel.k8s.io)");
}
