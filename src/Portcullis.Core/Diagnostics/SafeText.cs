using System.Globalization;
using System.Text;

namespace Portcullis.Diagnostics;

/// <summary>
/// Text from outside (an unverified certificate subject, a token's header, a webhook's error) on its way into a log
/// line, an audit annotation or a response: control characters and invisible format characters (bidi overrides,
/// zero-width marks) are shown as <c>\uXXXX</c>, so such text can neither forge a log line nor hide what it says, and
/// it is clipped to a bounded length.
/// </summary>
public static class SafeText
{
    public static string Of(string? text, int maxLength = 64)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }
        var clipped = text.Length > maxLength;
        var span = clipped ? text.AsSpan(0, maxLength) : text.AsSpan();
        if (!clipped && !NeedsEscape(span))
        {
            return text;
        }
        var builder = new StringBuilder(span.Length + 16);
        foreach (var c in span)
        {
            if (IsUnsafe(c))
            {
                builder.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            }
            else
            {
                builder.Append(c);
            }
        }
        if (clipped)
        {
            builder.Append("...");
        }
        return builder.ToString();
    }

    private static bool NeedsEscape(ReadOnlySpan<char> span)
    {
        foreach (var c in span)
        {
            if (IsUnsafe(c))
            {
                return true;
            }
        }
        return false;
    }

    private static bool IsUnsafe(char c) =>
        char.IsControl(c) || char.IsSurrogate(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format;
}
