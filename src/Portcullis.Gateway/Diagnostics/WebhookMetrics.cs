using System.Diagnostics.Metrics;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// <c>portcullis webhook</c>: one measurement per review answered, its duration in seconds with the tags <c>review</c>
/// (<c>TokenReview</c>, <c>SubjectAccessReview</c>) and <c>decision</c> (a fixed set, <see cref="Decisions"/>).
/// <see cref="GatewayMetrics"/> exports it as <c>portcullis_webhook_reviews_total{review,decision}</c> and
/// <c>portcullis_webhook_review_duration_seconds{review}</c>. No user, group or address label.
/// </summary>
internal sealed class WebhookMetrics(Meter meter)
{
    public const string InstrumentName = "portcullis_webhook_review_duration_seconds";
    public const string TotalName = "portcullis_webhook_reviews_total";

    public static readonly string[] Reviews = ["TokenReview", "SubjectAccessReview"];

    /// <summary>TokenReview: authenticated, unauthenticated, denied (deny list), error; SubjectAccessReview: allowed,
    /// denied, no_opinion, error; both: bad_request.</summary>
    public static readonly string[] Decisions = ["authenticated", "unauthenticated", "allowed", "denied", "no_opinion", "error", "bad_request"];

    /// <summary>Buckets for answers that should take well under a millisecond when cached, up to a slow upstream webhook.</summary>
    public static readonly double[] Buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Histogram<double> _duration = meter.CreateHistogram<double>(InstrumentName, "s", "Time to answer a webhook review.");

    public void Record(string review, string decision, double seconds) =>
        _duration.Record(seconds, new KeyValuePair<string, object?>("review", Array.IndexOf(Reviews, review) >= 0 ? review : "other"),
            new KeyValuePair<string, object?>("decision", Array.IndexOf(Decisions, decision) >= 0 ? decision : "error"));
}
