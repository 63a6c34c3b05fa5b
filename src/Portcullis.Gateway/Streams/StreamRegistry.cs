using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using Portcullis.Gateway.Pipeline;

namespace Portcullis.Gateway.Streams;

/// <summary>
/// The open long-running requests (watch, exec, attach, port-forward, log, proxy), so they can be closed at shutdown or
/// when their identity is newly denied.
/// </summary>
internal sealed class StreamRegistry
{
    private readonly ConcurrentDictionary<long, (HttpContext Context, GatewayRequestFeature Feature)> _open = new();
    private long _next;

    public int Count => _open.Count;

    public IDisposable Register(HttpContext context, GatewayRequestFeature feature)
    {
        var id = Interlocked.Increment(ref _next);
        _open[id] = (context, feature);
        return new Registration(this, id);
    }

    /// <summary>Aborts every open stream for which <paramref name="predicate"/> holds; returns how many.</summary>
    public int Close(Func<GatewayRequestFeature, bool> predicate)
    {
        var closed = 0;
        foreach (var (id, entry) in _open)
        {
            if (predicate(entry.Feature) && _open.TryRemove(id, out _))
            {
                entry.Context.Abort();
                closed++;
            }
        }
        return closed;
    }

    private sealed class Registration(StreamRegistry registry, long id) : IDisposable
    {
        public void Dispose() => registry._open.TryRemove(id, out _);
    }
}
