namespace Portcullis.Caching;

/// <summary>
/// A bounded cache whose entries expire one by one at the time they were added with, and which pushes out the least
/// recently used entry when full — kube-apiserver's <c>LRUExpireCache</c>
/// (k8s.io/apimachinery/pkg/util/cache/lruexpirecache.go), written for .NET: an entry is served until its expiry
/// instant inclusive (Go's <c>now.After(expireTime)</c> expires it), a hit moves it to the front, an expired entry
/// is removed when it is next looked up, and adding an existing key replaces its value and expiry.
/// </summary>
/// <remarks>One lock around a dictionary and a linked list: every operation is O(1) and short.</remarks>
public sealed class LruExpireCache<TKey, TValue> where TKey : notnull
{
    private readonly Lock _lock = new();
    private readonly Dictionary<TKey, LinkedListNode<Entry>> _entries;
    private readonly LinkedList<Entry> _order = new(); // front: most recently used
    private readonly TimeProvider _time;

    public LruExpireCache(int maxSize, TimeProvider? timeProvider = null, IEqualityComparer<TKey>? comparer = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSize);
        MaxSize = maxSize;
        _time = timeProvider ?? TimeProvider.System;
        _entries = new Dictionary<TKey, LinkedListNode<Entry>>(comparer);
    }

    /// <summary>Entries kept at most.</summary>
    public int MaxSize { get; }

    /// <summary>Entries held now, expired ones not yet looked up included.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Adds or replaces <paramref name="key"/>, valid for <paramref name="ttl"/> from now.</summary>
    public void Add(TKey key, TValue value, TimeSpan ttl)
    {
        var expires = _time.GetUtcNow() + ttl;
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                node.Value = new Entry(key, value, expires);
                _order.Remove(node);
                _order.AddFirst(node);
                return;
            }
            if (_entries.Count >= MaxSize && _order.Last is { } oldest)
            {
                _order.RemoveLast();
                _entries.Remove(oldest.Value.Key);
            }
            _entries[key] = _order.AddFirst(new Entry(key, value, expires));
        }
    }

    /// <summary>The value of <paramref name="key"/> when present and not expired (and marks it used).</summary>
    public bool TryGet(TKey key, out TValue value)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                if (now > node.Value.Expires)
                {
                    _order.Remove(node);
                    _entries.Remove(key);
                }
                else
                {
                    _order.Remove(node);
                    _order.AddFirst(node);
                    value = node.Value.Value;
                    return true;
                }
            }
        }
        value = default!;
        return false;
    }

    /// <summary>Removes <paramref name="key"/> if present.</summary>
    public void Remove(TKey key)
    {
        lock (_lock)
        {
            if (_entries.Remove(key, out var node))
            {
                _order.Remove(node);
            }
        }
    }

    private readonly record struct Entry(TKey Key, TValue Value, DateTimeOffset Expires);
}
