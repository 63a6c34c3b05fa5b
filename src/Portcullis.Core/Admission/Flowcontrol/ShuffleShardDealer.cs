using System.Security.Cryptography;
using System.Text;

namespace Portcullis.Admission.Flowcontrol;

/// <summary>
/// kube-apiserver's shuffle-sharding dealer: a flow's hash deals a hand of <c>handSize</c> distinct queues out of
/// <c>deckSize</c> (card i = hash mod (deck−i), hash /= (deck−i); then each card steps past the earlier cards at or
/// below it), so two flows share a whole hand only rarely.
/// </summary>
public sealed class ShuffleShardDealer
{
    public const int MaxHandSize = 15;

    public ShuffleShardDealer(int deckSize, int handSize)
    {
        if (deckSize <= 0 || handSize <= 0 || handSize > deckSize || handSize > MaxHandSize)
        {
            throw new ArgumentOutOfRangeException(nameof(handSize), $"handSize {handSize} and deckSize {deckSize}: need 0 < handSize <= deckSize and handSize <= {MaxHandSize}");
        }
        DeckSize = deckSize;
        HandSize = handSize;
    }

    public int DeckSize { get; }
    public int HandSize { get; }

    /// <summary>Writes the hand for <paramref name="hash"/> into <paramref name="hand"/> (length ≥ HandSize); returns HandSize.</summary>
    public int Deal(ulong hash, Span<int> hand)
    {
        Span<int> remainders = stackalloc int[MaxHandSize];
        for (var i = 0; i < HandSize; i++)
        {
            var deck = (ulong)(DeckSize - i);
            var next = hash / deck;
            remainders[i] = (int)(hash - deck * next);
            hash = next;
        }
        for (var i = 0; i < HandSize; i++)
        {
            var card = remainders[i];
            for (var j = i; j > 0; j--)
            {
                if (card >= remainders[j - 1])
                {
                    card++;
                }
            }
            hand[i] = card;
        }
        return HandSize;
    }

    /// <summary>
    /// kube-apiserver's flow hash: the little-endian uint64 of the first 8 bytes of SHA-256(flow schema name, 0x00,
    /// distinguisher).
    /// </summary>
    public static ulong FlowHash(string flowSchema, string distinguisher)
    {
        var max = Encoding.UTF8.GetMaxByteCount(flowSchema.Length + distinguisher.Length) + 1;
        var buffer = max <= 512 ? stackalloc byte[max] : new byte[max];
        var n = Encoding.UTF8.GetBytes(flowSchema, buffer);
        buffer[n++] = 0;
        n += Encoding.UTF8.GetBytes(distinguisher, buffer[n..]);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(buffer[..n], hash);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(hash);
    }
}
