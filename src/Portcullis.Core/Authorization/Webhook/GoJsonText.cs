using System.Text;

namespace Portcullis.Authorization.Webhook;

/// <summary>
/// JSON strings escaped as Go's <c>encoding/json</c> escapes them (what kube-apiserver's serializer writes, so the
/// SubjectAccessReview the gateway sends — and its cache key — is the API server's byte for byte): <c>"</c> and
/// <c>\</c> backslashed; <c>\b \f \n \r \t</c> short; other control characters <c>\u00xx</c> in lower-case hex;
/// <c>&lt; &gt; &amp;</c> as <c>\u003c \u003e \u0026</c> (HTML-safe, Go's default); U+2028 and U+2029 escaped;
/// an unpaired surrogate (invalid UTF-8 in Go) as <c>\ufffd</c>; every other character as itself.
/// System.Text.Json's encoders escape differently (non-ASCII, <c>+</c>, <c>'</c>, upper-case hex), hence this.
/// </summary>
public static class GoJsonText
{
    private const string Hex = "0123456789abcdef";

    /// <summary>Appends <paramref name="value"/> as a quoted JSON string.</summary>
    public static StringBuilder AppendQuoted(StringBuilder builder, string value)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(value);
        builder.Append('"');
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case '\b': builder.Append("\\b"); break;
                case '\f': builder.Append("\\f"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                case '<' or '>' or '&' or '\u2028' or '\u2029' or < ' ':
                    Unicode(builder, c);
                    break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                    {
                        builder.Append(c).Append(value[++i]);
                    }
                    else if (char.IsSurrogate(c))
                    {
                        builder.Append("\\ufffd");
                    }
                    else
                    {
                        builder.Append(c);
                    }
                    break;
            }
        }
        return builder.Append('"');
    }

    /// <summary>The quoted JSON string of <paramref name="value"/>.</summary>
    public static string Quote(string value) => AppendQuoted(new StringBuilder(value.Length + 2), value).ToString();

    private static void Unicode(StringBuilder builder, char c) =>
        builder.Append("\\u").Append(Hex[c >> 12]).Append(Hex[(c >> 8) & 0xF]).Append(Hex[(c >> 4) & 0xF]).Append(Hex[c & 0xF]);
}
