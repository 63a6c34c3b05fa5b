using System.Diagnostics.Metrics;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// The one measurement of an authentication attempt: its duration in seconds, with the tags <c>result</c>
/// (<c>success</c>, <c>failure</c>, <c>error</c>) and <c>authenticator</c> (the kind that decided, from a fixed set), on
/// the host's meter. <see cref="GatewayMetrics"/> exports it as kube-apiserver's <c>authentication_attempts{result}</c>
/// and <c>authentication_duration_seconds{result}</c> and as <c>portcullis_authentication_attempts_total{authenticator,result}</c>.
/// </summary>
internal sealed class AuthenticationMetrics(Meter meter)
{
    /// <summary>The instrument's name: the same as the kube-apiserver histogram it feeds.</summary>
    public const string InstrumentName = "authentication_duration_seconds";

    // The authenticator values; a name outside this set is "other". An array, not IReadOnlyList: a foreach over the
    // interface would allocate an enumerator per attempt.
    private static readonly string[] Kinds = ["x509", "token-file", "service-account", "jwt", "webhook", "anonymous", "none", "other"];

    private readonly Histogram<double> _duration = meter.CreateHistogram<double>(InstrumentName, "s",
        "Authentication duration in seconds broken out by result.");

    /// <summary>Records one attempt.</summary>
    /// <param name="authenticator">The chain's <c>ChainResult.Authenticator</c> ("" when nothing authenticated).</param>
    /// <param name="result"><c>success</c>, <c>failure</c> or <c>error</c>.</param>
    /// <param name="seconds">The time the attempt took.</param>
    public void Record(string authenticator, string result, double seconds) =>
        _duration.Record(seconds, new KeyValuePair<string, object?>("result", Result(result)),
            new KeyValuePair<string, object?>("authenticator", AuthenticatorLabel(authenticator)));

    /// <summary>The bounded label of an authenticator name: its kind (a JWT issuer's name carries its URL, <c>jwt:https://…</c>).</summary>
    internal static string AuthenticatorLabel(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0)
        {
            return "none";
        }
        var colon = name.IndexOf(':', StringComparison.Ordinal);
        var kind = colon > 0 ? name.AsSpan(0, colon) : name.AsSpan();
        foreach (var known in Kinds)
        {
            if (kind.SequenceEqual(known))
            {
                return known;
            }
        }
        return "other";
    }

    private static string Result(string result) => result is "success" or "failure" or "error" ? result : "error";
}
