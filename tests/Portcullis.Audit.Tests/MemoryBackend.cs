using System.Collections.Concurrent;

namespace Portcullis.Audit.Tests;

/// <summary>Keeps events in memory; can be told to fail like a full disk.</summary>
internal sealed class MemoryBackend(AuditMode mode = AuditMode.Blocking, string name = "log") : IAuditBackend
{
    public ConcurrentQueue<AuditEvent> Events { get; } = new();

    public bool Fail { get; set; }

    public string Name => name;

    public AuditMode Mode => mode;

    public ValueTask ProcessAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken = default)
    {
        if (Fail && mode != AuditMode.Batch)
        {
            throw new AuditBackendException(name, "disk full", null);
        }
        foreach (var e in events)
        {
            Events.Enqueue(e);
        }
        return default;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => default;

    public ValueTask ShutdownAsync(CancellationToken cancellationToken = default) => default;

    public List<string> Lines() => [.. Events.Select(AuditEventSerializer.SerializeToString)];
}
