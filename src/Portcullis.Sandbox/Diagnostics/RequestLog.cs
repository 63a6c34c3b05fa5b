using System.Security.Cryptography;
using System.Text;
using Portcullis.Sandbox.Identity;

namespace Portcullis.Sandbox.Diagnostics;

/// <summary>One request the sandbox received, as <c>/sandbox/requests</c> reports it.</summary>
public sealed record RecordedRequest(
    DateTimeOffset Time,
    string Method,
    string Path,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Headers,
    RequestIdentity Identity);

/// <summary>A bounded ring of the most recent requests, newest last.</summary>
public sealed class RequestLog
{
    private static readonly HashSet<string> SecretHeaders = new(StringComparer.OrdinalIgnoreCase) { "Authorization", "Cookie", "Proxy-Authorization" };

    private readonly Lock _lock = new();
    private readonly Queue<RecordedRequest> _entries = new();
    private readonly int _capacity;

    /// <summary>Creates a log keeping at most <paramref name="capacity"/> requests.</summary>
    public RequestLog(int capacity = 1000) => _capacity = Math.Max(1, capacity);

    /// <summary>Adds a request, dropping the oldest when full.</summary>
    public void Add(RecordedRequest request)
    {
        lock (_lock)
        {
            _entries.Enqueue(request);
            while (_entries.Count > _capacity)
            {
                _entries.Dequeue();
            }
        }
    }

    /// <summary>The last <paramref name="limit"/> requests, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> Recent(int limit)
    {
        lock (_lock)
        {
            return [.. _entries.Skip(Math.Max(0, _entries.Count - Math.Max(0, limit)))];
        }
    }

    /// <summary>Header values as recorded: credentials are replaced by a short hash, never stored.</summary>
    public static string RecordedValue(string name, string value) =>
        SecretHeaders.Contains(name) ? "redacted sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)))[..12] : value;
}
