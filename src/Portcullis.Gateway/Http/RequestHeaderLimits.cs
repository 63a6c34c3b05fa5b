using Microsoft.AspNetCore.Http;
using Portcullis.Configuration;

namespace Portcullis.Gateway.Http;

/// <summary>
/// The gateway's own limits on request headers (<c>limits.maxRequestHeaderCount</c>, <c>limits.maxRequestHeaderBytes</c>),
/// checked by <see cref="RequestStartMiddleware"/> so that a request over them is answered 431 <em>and audited</em>, on
/// HTTP/1.1 and HTTP/2 alike. Kestrel refuses before any gateway code runs, so its own limits are set well above these
/// (<see cref="LimitsConfiguration.KestrelMaxRequestHeaderCount"/>, <see cref="LimitsConfiguration.KestrelMaxRequestHeaderBytes"/>):
/// only a request beyond those is refused by Kestrel alone, unaudited.
/// </summary>
internal static class RequestHeaderLimits
{
    /// <summary>Null when <paramref name="headers"/> are within <paramref name="limits"/>; else why not, for the audit event.</summary>
    public static string? Check(IHeaderDictionary headers, LimitsConfiguration limits)
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
        if (count > limits.MaxRequestHeaderCount)
        {
            return $"the request has {count} header lines; the gateway accepts at most {limits.MaxRequestHeaderCount}";
        }
        if (bytes > limits.MaxRequestHeaderBytes)
        {
            return $"the request headers take {bytes} bytes; the gateway accepts at most {limits.MaxRequestHeaderBytes}";
        }
        return null;
    }
}
