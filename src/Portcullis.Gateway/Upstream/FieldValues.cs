namespace Portcullis.Gateway.Upstream;

/// <summary>
/// RFC 9110 §5.5 field values and §5.6.2 tokens, as bytes and as the strings the gateway is about to write upstream.
/// A value passes only if every HTTP/1.1 parser reads it back unchanged: no CR, LF, NUL or other control character, and
/// for values the gateway vouches for (identities) no leading or trailing whitespace, which a parser would trim.
/// </summary>
internal static class FieldValues
{
    /// <summary>A header value a client sent that may be forwarded: visible ASCII, SP and HTAB (obs-text is refused).</summary>
    public static bool IsForwardable(string value)
    {
        foreach (var c in value)
        {
            if (c is not ('\t' or (>= ' ' and <= '~')))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// An identity value (user, group, uid, extra key or value) the gateway writes: the authenticator chain's own rule
    /// (<see cref="Portcullis.Authentication.IdentityValidator.Check"/>), applied again at the wire in case a value
    /// reached the forwarder by another path. Non-ASCII text passes; it is written as UTF-8 (obs-text).
    /// </summary>
    public static bool IsIdentityValue(string value) => Portcullis.Authentication.IdentityValidator.Check(value) is null;

    /// <summary>tchar: the characters of a header name.</summary>
    public static bool IsTokenByte(byte b) =>
        b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9')
            or (byte)'!' or (byte)'#' or (byte)'$' or (byte)'%' or (byte)'&' or (byte)'\'' or (byte)'*' or (byte)'+'
            or (byte)'-' or (byte)'.' or (byte)'^' or (byte)'_' or (byte)'`' or (byte)'|' or (byte)'~';

    public static bool IsToken(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty)
        {
            return false;
        }
        foreach (var b in name)
        {
            if (!IsTokenByte(b))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>field-value bytes: HTAB, SP, VCHAR and obs-text; never CR, LF, NUL or another control.</summary>
    public static bool IsFieldValue(ReadOnlySpan<byte> value)
    {
        foreach (var b in value)
        {
            if (b is not ((byte)'\t' or (>= 0x20 and <= 0x7E) or >= 0x80))
            {
                return false;
            }
        }
        return true;
    }
}
