using System.Buffers;
using System.Globalization;
using System.Text;

namespace Portcullis.Http;

/// <summary>
/// A small UTF-8 JSON writer that escapes strings exactly as Go's encoding/json does (the bytes kube-apiserver writes):
/// <c>&lt; &gt; &amp;</c> as <c>\u003c \u003e \u0026</c>, U+2028/U+2029 escaped, short forms for <c>\b \f \n \r \t</c>
/// (Go 1.22+), other control characters as lower-case <c>\u00xx</c>, invalid UTF-16 as U+FFFD, the rest raw UTF-8.
/// The one Go-compatible JSON writer: audit events and Status bodies both use it.
/// </summary>
internal sealed class GoJsonWriter : IDisposable
{
    private byte[] _buffer;
    private int _length;

    public GoJsonWriter(int capacity = 1024) => _buffer = ArrayPool<byte>.Shared.Rent(capacity);

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);

    public void Clear() => _length = 0;

    public byte[] ToArray() => WrittenSpan.ToArray();

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        if (b.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    private Span<byte> Reserve(int n)
    {
        if (_length + n > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + n));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        return _buffer.AsSpan(_length, n);
    }

    public void Raw(byte b)
    {
        Reserve(1)[0] = b;
        _length++;
    }

    public void Raw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        _length += bytes.Length;
    }

    public void Int(long value)
    {
        var span = Reserve(20);
        value.TryFormat(span, out var written, default, CultureInfo.InvariantCulture);
        _length += written;
    }

    /// <summary>RFC 3339 with exactly six fractional digits in UTC, as Go's metav1.MicroTime marshals.</summary>
    public void MicroTime(DateTime value)
    {
        var utc = value.Kind == DateTimeKind.Local ? value.ToUniversalTime() : value;
        // Hand-formatted: a custom DateTime format string costs several times more on this hot path.
        var d = Reserve(29);
        d[0] = (byte)'"';
        Digits(d.Slice(1, 4), utc.Year);
        d[5] = (byte)'-';
        Digits(d.Slice(6, 2), utc.Month);
        d[8] = (byte)'-';
        Digits(d.Slice(9, 2), utc.Day);
        d[11] = (byte)'T';
        Digits(d.Slice(12, 2), utc.Hour);
        d[14] = (byte)':';
        Digits(d.Slice(15, 2), utc.Minute);
        d[17] = (byte)':';
        Digits(d.Slice(18, 2), utc.Second);
        d[20] = (byte)'.';
        Digits(d.Slice(21, 6), (int)(utc.Ticks % TimeSpan.TicksPerSecond / 10));
        d[27] = (byte)'Z';
        d[28] = (byte)'"';
        _length += 29;
    }

    private static void Digits(Span<byte> into, int value)
    {
        for (var i = into.Length - 1; i >= 0; i--)
        {
            into[i] = (byte)('0' + value % 10);
            value /= 10;
        }
    }

    private static readonly byte[] Hex = "0123456789abcdef"u8.ToArray();

    public void String(string value)
    {
        Raw((byte)'"');
        var span = value.AsSpan();
        var i = 0;
        while (i < span.Length)
        {
            // Copy the longest run needing no escape as UTF-8 in one go.
            var start = i;
            var next = span[i..].IndexOfAny(Escaped);
            i = next < 0 ? span.Length : i + next;
            if (i > start)
            {
                var run = span[start..i];
                var max = Encoding.UTF8.GetMaxByteCount(run.Length);
                var dest = Reserve(max);
                _length += Encoding.UTF8.GetBytes(run, dest);
            }
            if (i >= span.Length)
            {
                break;
            }
            var c = span[i];
            if (char.IsHighSurrogate(c) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1]))
            {
                var dest = Reserve(4);
                _length += Encoding.UTF8.GetBytes(span.Slice(i, 2), dest);
                i += 2;
                continue;
            }
            i++;
            switch (c)
            {
                case '"': Raw("\\\""u8); break;
                case '\\': Raw("\\\\"u8); break;
                case '\n': Raw("\\n"u8); break;
                case '\r': Raw("\\r"u8); break;
                case '\t': Raw("\\t"u8); break;
                case '\b': Raw("\\b"u8); break;
                case '\f': Raw("\\f"u8); break;
                default:
                    if (char.IsSurrogate(c))
                    {
                        Raw("\\ufffd"u8);
                    }
                    else
                    {
                        var d = Reserve(6);
                        d[0] = (byte)'\\';
                        d[1] = (byte)'u';
                        d[2] = Hex[(c >> 12) & 0xF];
                        d[3] = Hex[(c >> 8) & 0xF];
                        d[4] = Hex[(c >> 4) & 0xF];
                        d[5] = Hex[c & 0xF];
                        _length += 6;
                    }
                    break;
            }
        }
        Raw((byte)'"');
    }

    // Characters that leave the fast copy: control characters, quote, backslash, the HTML-sensitive three, the two
    // line separators and every surrogate (valid pairs are copied as UTF-8, lone ones become U+FFFD).
    private static readonly SearchValues<char> Escaped = SearchValues.Create(BuildEscaped());

    private static string BuildEscaped()
    {
        var sb = new StringBuilder();
        for (var c = '\0'; c < ' '; c++)
        {
            sb.Append(c);
        }
        sb.Append("\"\\<>&\u2028\u2029");
        for (var c = 0xD800; c <= 0xDFFF; c++)
        {
            sb.Append((char)c);
        }
        return sb.ToString();
    }

    /// <summary>Writes <c>"name":</c>; names are ASCII literals known at compile time.</summary>
    public void Name(ReadOnlySpan<byte> quotedNameWithColon) => Raw(quotedNameWithColon);
}
