using System.Buffers;
using System.Text;

namespace Portcullis.Authorization;

/// <summary>
/// Refuses request paths that kube-apiserver (or a router in front of or behind the gateway) could resolve differently
/// from the way the gateway classifies them, so the gateway answers 400 instead of guessing. Also decodes the path
/// exactly as Go's <c>url.URL.Path</c> does for the paths it accepts.
/// </summary>
/// <remarks>
/// Decisions against shared/spec/bad-inputs.md §2 (item numbers refer to that list):
/// <list type="bullet">
/// <item>9: a <c>.</c> or <c>..</c> segment, raw or percent-encoded (<c>%2E%2E</c>), is refused: Go's ServeMux, Envoy and
/// NGINX would clean it, kube-apiserver's RequestInfo would not, so two layers would see two different resources.</item>
/// <item>9: an empty segment (<c>//</c>, a leading <c>//</c>) is refused: RequestInfo splits it into an empty part
/// that shifts namespace/resource, while a normalising proxy merges it. A single trailing <c>/</c> is accepted because
/// kube-apiserver's RequestInfo trims it too, so both classify the request the same way.</item>
/// <item>9: <c>;</c> (raw or <c>%3B</c>) is refused: Envoy/Tomcat-style routers treat it as a path parameter and drop it
/// (CVE-2019-9901); no Kubernetes name can contain it.</item>
/// <item>10: <c>%2F</c>/<c>%2f</c> is refused: Go decodes it into a separator for RequestInfo while routers keep it as
/// data. <c>%5C</c> and a raw <c>\</c> are refused: some proxies turn them into <c>/</c>.</item>
/// <item>10: <c>%25</c> (double encoding such as <c>%252F</c>) is refused: a second decoding layer anywhere downstream
/// would see a separator; no Kubernetes name contains <c>%</c>.</item>
/// <item>10: <c>%00</c>, any decoded control character, a malformed escape (<c>%zz</c>, <c>%4</c>), invalid or overlong
/// UTF-8 (<c>%C0%AF</c>), and raw bytes outside printable ASCII are refused; Go's URL parser rejects malformed escapes
/// with 400 as well.</item>
/// <item>11: a raw <c>#</c> in the path is refused (a fragment never reaches a server legitimately).</item>
/// <item>12: case is NOT normalised: <c>/API/v1/pods</c> is, for kube-apiserver and for us, the non-resource path
/// <c>/API/v1/pods</c> (only a <c>*</c> nonResourceURLs rule allows it, upstream answers 404); both agree, so it passes.</item>
/// <item>13: cluster-scoped resources under a namespaced path (<c>/api/v1/namespaces/x/nodes/n</c>) are classified as
/// kube-apiserver classifies them (namespace x, resource nodes) and passed on; kube-apiserver has no such route and
/// answers 404, so nothing more than its own decision is granted.</item>
/// </list>
/// </remarks>
public static class PathGuard
{
    /// <summary>
    /// Checks <paramref name="rawPath"/> (the request-target path as sent, before <c>?</c>) and decodes it.
    /// Returns null and the decoded path when acceptable; otherwise a message for a 400 response.
    /// </summary>
    public static string? Check(string rawPath, out string decodedPath)
    {
        decodedPath = rawPath;
        if (rawPath.Length == 0 || rawPath[0] != '/')
        {
            return "the request path must start with /";
        }
        var span = rawPath.AsSpan();
        // Vectorised scans: the common path has none of these and costs a few nanoseconds.
        var bad = span.IndexOfAnyExcept(Allowed);
        if (bad >= 0)
        {
            return span[bad] switch
            {
                ';' => "the request path contains a ';' parameter",
                '\\' => "the request path contains a backslash",
                '#' => "the request path contains a fragment (#)",
                _ => "the request path contains a character that must be percent-encoded",
            };
        }
        var empty = span.IndexOf("//", StringComparison.Ordinal);
        if (empty >= 0)
        {
            return "the request path contains an empty segment (//)";
        }
        if (HasDotSegment(span))
        {
            return "the request path contains a dot segment (. or ..)";
        }
        if (!span.Contains('%'))
        {
            return null;
        }
        return DecodeStrict(rawPath, out decodedPath);
    }

    // Printable ASCII except ';', '\\' and '#'.
    private static readonly SearchValues<char> Allowed = SearchValues.Create(
        "!\"$%&'()*+,-./0123456789:<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    // A segment that is exactly "." or ".." (the path starts with '/').
    private static bool HasDotSegment(ReadOnlySpan<char> path)
    {
        var from = 0;
        while (true)
        {
            var i = path[from..].IndexOf("/.", StringComparison.Ordinal);
            if (i < 0)
            {
                return false;
            }
            var p = from + i + 2; // just after "/."
            if (p == path.Length || path[p] == '/')
            {
                return true;
            }
            if (path[p] == '.' && (p + 1 == path.Length || path[p + 1] == '/'))
            {
                return true;
            }
            from = p - 1;
        }
    }

    private static bool IsDots(ReadOnlySpan<char> s) => s is "." or "..";

    private static string? DecodeStrict(string rawPath, out string decoded)
    {
        decoded = rawPath;
        var bytes = new byte[rawPath.Length];
        var n = 0;
        for (var i = 0; i < rawPath.Length; i++)
        {
            var c = rawPath[i];
            if (c != '%')
            {
                bytes[n++] = (byte)c;
                continue;
            }
            if (i + 2 >= rawPath.Length || !IsHex(rawPath[i + 1]) || !IsHex(rawPath[i + 2]))
            {
                return "the request path contains a malformed percent-escape";
            }
            var b = (byte)((HexValue(rawPath[i + 1]) << 4) | HexValue(rawPath[i + 2]));
            switch (b)
            {
                case (byte)'/':
                    return "the request path contains an encoded slash (%2F)";
                case (byte)'\\':
                    return "the request path contains an encoded backslash (%5C)";
                case (byte)'%':
                    return "the request path contains an encoded percent sign (%25, double encoding)";
                case (byte)';':
                    return "the request path contains an encoded ';' (%3B)";
                case < 0x20 or 0x7f:
                    return "the request path contains an encoded control character (such as %00)";
                default:
                    break;
            }
            bytes[n++] = b;
            i += 2;
        }
        try
        {
            decoded = StrictUtf8.GetString(bytes, 0, n);
        }
        catch (DecoderFallbackException)
        {
            return "the request path is not valid UTF-8 after percent-decoding";
        }
        // Encoded dots form dot segments only after decoding.
        foreach (var segment in decoded.AsSpan(1).Split('/'))
        {
            if (IsDots(decoded.AsSpan(1)[segment]))
            {
                return "the request path contains a dot segment (. or ..)";
            }
        }
        return null;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}
