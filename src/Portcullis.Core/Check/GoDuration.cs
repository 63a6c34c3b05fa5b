using System.Globalization;
using System.Text.RegularExpressions;

namespace Portcullis.Check;

/// <summary>Parses Go <c>time.Duration</c> strings ("1h2m3s", "300ms", "0") as kube-apiserver's flags take them.</summary>
public static partial class GoDuration
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var s = text.Trim();
        if (s == "0")
        {
            return true;
        }
        var matches = Part().Matches(s);
        if (s.Length == 0 || matches.Count == 0 || matches.Sum(m => m.Length) != s.Length)
        {
            return false;
        }
        double ticks = 0;
        foreach (Match m in matches)
        {
            var number = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            ticks += m.Groups[2].Value switch
            {
                "h" => number * TimeSpan.TicksPerHour,
                "m" => number * TimeSpan.TicksPerMinute,
                "s" => number * TimeSpan.TicksPerSecond,
                "ms" => number * TimeSpan.TicksPerMillisecond,
                "us" or "µs" => number * 10,
                _ => number / 100,
            };
        }
        value = TimeSpan.FromTicks((long)ticks);
        return true;
    }

    [GeneratedRegex(@"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")]
    private static partial Regex Part();
}
