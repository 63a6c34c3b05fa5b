using System.Text;
using Portcullis.Http;

namespace Portcullis.Core.Tests.Http;

/// <summary>
/// <see cref="GoJsonWriter"/>'s strings as Go's <c>encoding/json</c> writes them (the SubjectAccessReview body and its
/// cache key, audit events and Status bodies all depend on it).
/// </summary>
public sealed class GoJsonWriterTests
{
    [Theory]
    [InlineData("plain", "\"plain\"")]
    [InlineData("<a href='x'>&amp;</a>", "\"\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e\"")]
    [InlineData("\b\f\n\r\t\u0000\u001f\u007f", "\"\\b\\f\\n\\r\\t\\u0000\\u001f\u007f\"")]
    [InlineData("\u2028\u2029 é 日本 +`", "\"\\u2028\\u2029 é 日本 +`\"")]
    [InlineData("\\\"", "\"\\\\\\\"\"")]
    public void Strings_are_escaped_as_Go_encoding_json_escapes_them(string value, string json) =>
        Assert.Equal(json, Quote(value));

    [Fact]
    public void A_surrogate_pair_is_kept_and_a_lone_surrogate_is_the_replacement_character_as_Go_writes_invalid_UTF8()
    {
        Assert.Equal("\"\ud83d\ude00\"", Quote("\ud83d\ude00"));
        Assert.Equal("\"\\ufffdx\\ufffd\"", Quote("\ud800x\udc00"));
    }

    private static string Quote(string value)
    {
        using var w = new GoJsonWriter(16);
        w.String(value);
        return Encoding.UTF8.GetString(w.WrittenSpan);
    }
}
