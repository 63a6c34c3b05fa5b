using Portcullis.Http;

namespace Portcullis.Core.Tests.Http;

/// <summary>Status bodies are written by the one Go-compatible JSON writer the audit events use.</summary>
public sealed class StatusTests
{
    [Fact]
    public void A_Status_is_byte_for_byte_kube_apiservers()
    {
        var body = Status.ToText(Status.Failure("pods \"web\" is forbidden", "Forbidden", new StatusDetails("web", "", "pods"), 403));
        Assert.Equal("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"web\\\" is forbidden\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"web\",\"kind\":\"pods\"},\"code\":403}", body);
    }

    // Go 1.22+ encoding/json: \b and \f short forms, HTML characters and U+2028/9 escaped, invalid UTF-16 as U+FFFD.
    [Fact]
    public void Messages_are_escaped_as_go_escapes_them()
    {
        var body = Status.ToText(Status.Failure("a\bb\fc<d>&\u2028\u0001\uD800", "BadRequest", 400));
        Assert.Contains("\"message\":\"a\\bb\\fc\\u003cd\\u003e\\u0026\\u2028\\u0001\\ufffd\"", body, StringComparison.Ordinal);
    }
}
