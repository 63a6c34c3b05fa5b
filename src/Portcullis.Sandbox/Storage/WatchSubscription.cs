using System.Threading.Channels;

namespace Portcullis.Sandbox.Storage;

/// <summary>An open watch: a stream of ready-to-send event lines, ended by disposing it.</summary>
public sealed class WatchSubscription : IDisposable
{
    private readonly Channel<string> _channel = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Action<WatchSubscription> _unsubscribe;

    internal WatchSubscription(ObjectStore.WatchFilter filter, Action<WatchSubscription> unsubscribe)
    {
        Filter = filter;
        _unsubscribe = unsubscribe;
    }

    internal ObjectStore.WatchFilter Filter { get; }

    /// <summary>Each item is one JSON watch event, <c>{"type":…,"object":…}</c>, without the newline.</summary>
    public ChannelReader<string> Events => _channel.Reader;

    internal void Publish(string line) => _channel.Writer.TryWrite(line);

    /// <summary>Stops the watch.</summary>
    public void Dispose()
    {
        _unsubscribe(this);
        _channel.Writer.TryComplete();
    }
}
