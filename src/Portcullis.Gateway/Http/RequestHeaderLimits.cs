using Microsoft.AspNetCore.Http;

namespace Portcullis.Gateway.Http;

/// <summary>
/// The gateway's own limits on request headers, checked by <see cref="RequestStartMiddleware"/> so that a request over
/// them is answered 431 <em>and audited</em>. Kestrel refuses before any gateway code runs, so its own limits are set
/// well above these (<see cref="KestrelMaxHeaderCount"/>, <see cref="KestrelMaxHeadersTotalBytes"/>): only a request
/// beyond those is answered 431 by Kestrel alone, unaudited.
/// </summary>
internal static class RequestHeaderLimits
{
    /// <summary>Header lines a request may carry (Kestrel's default limit, which the gateway used to leave to Kestrel).</summary>
    public const int MaxHeaderCount = 100;

    /// <summary>Bytes of header lines a request may carry (name, ": ", value and CRLF of each line).</summary>
    public const int MaxHeadersTotalBytes = 64 * 1024;

    /// <summary>Kestrel's hard limit: past it Kestrel answers 431 itself and no layer (audit included) sees the request.</summary>
    public const int KestrelMaxHeaderCount = 2000;

    /// <summary>Kestrel's hard limit on the header block; see <see cref="KestrelMaxHeaderCount"/>.</summary>
    public const int KestrelMaxHeadersTotalBytes = 256 * 1024;

    /// <summary>Null when <paramref name="headers"/> are within the limits; else why not, for the audit event.</summary>
    public static string? Check(IHeaderDictionary headers)
    {
        var count = 0;
        long bytes = 0;
        foreach (var (name, values) in headers)
        {
            // Kestrel keeps repeated lines as one entry with several values: each value is one line.
            var lines = Math.Max(values.Count, 1);
            count += lines;
            bytes += (long)lines * (name.Length + 4);
            foreach (var value in values)
            {
                bytes += value?.Length ?? 0;
            }
        }
        if (count > MaxHeaderCount)
        {
            return $"the request has {count} header lines; the gateway accepts at most {MaxHeaderCount}";
        }
        if (bytes > MaxHeadersTotalBytes)
        {
            return $"the request headers take {bytes} bytes; the gateway accepts at most {MaxHeadersTotalBytes}";
        }
        return null;
    }
}
