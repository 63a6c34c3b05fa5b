using Portcullis.Diagnostics;

namespace Portcullis.Core.Tests.Diagnostics;

public sealed class SafeTextTests
{
    [Theory]
    [InlineData("CN=jane,O=dev", "CN=jane,O=dev")]
    [InlineData("CN=eve\r\nImpersonate-Group: system:masters", "CN=eve\\u000D\\u000AImpersonate-Group: system:masters")]
    [InlineData("kid\u0000\u001b[31m", "kid\\u0000\\u001B[31m")]
    [InlineData("admin\u202Enimda", "admin\\u202Enimda")]
    [InlineData("zero\u200Bwidth", "zero\\u200Bwidth")]
    [InlineData("jérôme 中文", "jérôme 中文")]
    public void Control_and_invisible_characters_are_escaped_and_text_is_kept(string input, string expected) =>
        Assert.Equal(expected, SafeText.Of(input, 256));

    [Fact]
    public void Long_text_is_clipped_before_escaping_so_the_result_stays_bounded()
    {
        var text = new string('\n', 1000);
        var safe = SafeText.Of(text, 64);
        Assert.Equal(64 * 6 + 3, safe.Length);
        Assert.EndsWith("...", safe, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', safe);
    }

    [Fact]
    public void A_lone_surrogate_is_escaped() => Assert.Equal("a\\uD800b", SafeText.Of("a\uD800b"));
}
