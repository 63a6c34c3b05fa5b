using System.Text;

namespace Portcullis.Http;

/// <summary>
/// JSON string escaping as Go's encoding/json writes it (what kube-apiserver's bodies contain): <c>"</c> and <c>\</c>
/// backslash-escaped, <c>\n \r \t</c> short forms, other control characters as <c>\u00XX</c>, and <c>&lt; &gt; &amp;</c>,
/// U+2028 and U+2029 as <c>\u003c \u003e \u0026 \u2028 \u2029</c>. Everything else is written as UTF-8.
/// </summary>
public static class GoJson
{
    public static void AppendString(StringBuilder sb, string value)
    {
        sb.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '<': sb.Append("\\u003c"); break;
                case '>': sb.Append("\\u003e"); break;
                case '&': sb.Append("\\u0026"); break;
                case '\u2028': sb.Append("\\u2028"); break;
                case '\u2029': sb.Append("\\u2029"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u00").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        sb.Append('"');
    }

    public static string Quote(string value)
    {
        var sb = new StringBuilder(value.Length + 2);
        AppendString(sb, value);
        return sb.ToString();
    }
}
