using System.Text;

namespace Portcullis.Http;

/// <summary>
/// The protobuf wire format as far as the gateway reads Kubernetes objects (<c>application/vnd.kubernetes.protobuf</c>):
/// a message's length-delimited fields (strings, bytes, nested messages) in order, every other wire type skipped.
/// The caller applies Go's generated-code rules (a repeated scalar field: the last one wins; a repeated message field:
/// merged). Malformed input is a <see cref="FormatException"/>.
/// </summary>
public static class ProtobufWire
{
    /// <summary>The prefix of every Kubernetes protobuf body, before its <c>runtime.Unknown</c> envelope.</summary>
    public static ReadOnlySpan<byte> KubernetesMagic => "k8s\0"u8;

    /// <summary>The length-delimited fields of a message (others are skipped); FormatException when malformed.</summary>
    public static List<(int Field, ReadOnlyMemory<byte> Value)> Fields(ReadOnlyMemory<byte> message)
    {
        var fields = new List<(int, ReadOnlyMemory<byte>)>();
        var span = message.Span;
        var i = 0;
        while (i < span.Length)
        {
            var key = Varint(span, ref i);
            var field = key >> 3;
            if (field is 0 or > int.MaxValue)
            {
                throw new FormatException("invalid field number");
            }
            switch (key & 7)
            {
                case 0:
                    Varint(span, ref i);
                    break;
                case 1:
                    i = Skip(span, i, 8);
                    break;
                case 2:
                    var length = Varint(span, ref i);
                    if (length > (ulong)(span.Length - i))
                    {
                        throw new FormatException("a length runs past the end");
                    }
                    fields.Add(((int)field, message.Slice(i, (int)length)));
                    i += (int)length;
                    break;
                case 5:
                    i = Skip(span, i, 4);
                    break;
                default:
                    throw new FormatException($"unsupported wire type {key & 7}");
            }
        }
        return fields;
    }

    /// <summary>A string field's value; FormatException when it is not UTF-8.</summary>
    public static string Utf8(ReadOnlyMemory<byte> value)
    {
        try
        {
            return StrictUtf8.GetString(value.Span);
        }
        catch (DecoderFallbackException ex)
        {
            throw new FormatException("a string is not UTF-8", ex);
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private static int Skip(ReadOnlySpan<byte> span, int i, int count) =>
        span.Length - i >= count ? i + count : throw new FormatException("a fixed-size field runs past the end");

    private static ulong Varint(ReadOnlySpan<byte> span, ref int i)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (i >= span.Length)
            {
                throw new FormatException("a varint runs past the end");
            }
            var b = span[i++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }
        throw new FormatException("a varint is too long");
    }
}
