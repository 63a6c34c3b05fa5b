using Portcullis.Authorization;

namespace Portcullis.Admission.Flowcontrol;

/// <summary>
/// The number of stored objects of a resource, as kube-apiserver's object count tracker knows it (from
/// <c>apiserver_storage_objects</c>); null when not known.
/// </summary>
public interface IObjectCounts
{
    /// <summary>The count for <paramref name="groupResource"/> (<c>pods</c>, <c>deployments.apps</c>), or null.</summary>
    long? Count(string groupResource);
}

/// <summary>
/// kube-apiserver's list work estimator (request/list_work_estimator.go, the object-count rule; SizeBasedListCostEstimate
/// off): how many seats a list, or a watch that sends its initial events, occupies. One seat per 100 objects it is
/// expected to process, at least 1 and at most the level's max seats (10 when the level has none, or more). A request
/// for one object (a name) processes 1; a list the watch cache serves processes every stored object; one from etcd with
/// a selector the stored objects plus the limit; otherwise twice the limit. A resource whose count is unknown gets the
/// minimum, as kube-apiserver does for a count it has not found. Any other request is 1 seat.
/// </summary>
public static class WorkEstimator
{
    public const int MinimumSeats = 1;
    /// <summary>kube-apiserver's MaximumListSeatsLimit (without SizeBasedListCostEstimate).</summary>
    public const int MaximumListSeats = 10;
    public const double ObjectsPerSeat = 100.0;

    /// <summary>The seats of <paramref name="request"/> with its raw <paramref name="query"/> (without '?').</summary>
    public static int Seats(RequestInfo request, string query, int levelMaxSeats, IObjectCounts? counts)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!request.IsResourceRequest || request.Verb is not ("list" or "watch"))
        {
            return MinimumSeats;
        }
        if (counts is null)
        {
            return MinimumSeats; // no count source at all: as a count not found
        }
        var maxSeats = levelMaxSeats <= 0 || levelMaxSeats > MaximumListSeats ? MaximumListSeats : levelMaxSeats;
        var resourceVersion = RequestInfoParser.QueryValue(query, "resourceVersion") ?? "";
        if (request.Verb == "watch")
        {
            var sendInitialEvents = RequestInfoParser.QueryValue(query, "sendInitialEvents") == "true";
            var legacyWatch = resourceVersion is "" or "0";
            if (!sendInitialEvents && !legacyWatch)
            {
                return MinimumSeats;
            }
        }
        long limit = 0;
        if (RequestInfoParser.QueryValue(query, "limit") is { } limitText && !long.TryParse(limitText, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out limit))
        {
            return maxSeats; // kube-apiserver: options that do not convert get the maximum (the request fails validation)
        }
        var match = RequestInfoParser.QueryValue(query, "resourceVersionMatch") ?? "";
        var fromStorage = ListFromStorage(match, resourceVersion, limit, RequestInfoParser.QueryValue(query, "continue") ?? "");
        var fromCache = request.Verb == "watch" || !fromStorage;
        var group = request.ApiGroup.Length == 0 ? request.Resource : request.Resource + "." + request.ApiGroup;
        if (counts.Count(group) is not { } stored)
        {
            return MinimumSeats;
        }
        var limited = limit > 0 && limit < stored ? limit : stored;
        long objects;
        if (request.Name.Length > 0)
        {
            objects = 1;
        }
        else if (fromCache)
        {
            objects = stored;
        }
        else if (request.FieldSelector.Length > 0 || request.LabelSelector.Length > 0)
        {
            objects = stored + limited;
        }
        else
        {
            objects = 2 * limited;
        }
        var seats = (long)Math.Ceiling(objects / ObjectsPerSeat);
        return (int)Math.Clamp(seats, MinimumSeats, maxSeats);
    }

    /// <summary>
    /// kube-apiserver's ShouldDelegateListMeta with a cache without snapshots: does the list go to etcd? A consistent
    /// read (no resourceVersion) is taken as served by the watch cache (etcd's progress notifications, on since 1.31).
    /// </summary>
    private static bool ListFromStorage(string match, string resourceVersion, long limit, string continueToken) => match switch
    {
        "Exact" => true,
        "NotOlderThan" => false,
        "" when continueToken.Length > 0 => true,
        "" when limit > 0 && resourceVersion.Length > 0 && resourceVersion != "0" => true,
        "" => false,
        _ => true,
    };
}

/// <summary>
/// kube-apiserver's request wait limit (filters/priority-and-fairness.go, getRequestWaitContext): a request with a
/// deadline waits at most a quarter of it, one without (a watch) the default (<c>--request-timeout</c> / 4), and never more
/// than a minute. The deadline is kube-apiserver's (filters/request_deadline.go): <c>?timeout=</c> when above 0 and below
/// <c>--request-timeout</c>, else <c>--request-timeout</c>; long-running requests have none.
/// </summary>
public static class RequestWaitLimit
{
    public static readonly TimeSpan Maximum = TimeSpan.FromMinutes(1);

    public static TimeSpan For(TimeSpan requestTimeout, RequestInfo request, string query)
    {
        ArgumentNullException.ThrowIfNull(request);
        var limit = requestTimeout / 4;
        if (!request.IsLongRunning)
        {
            var deadline = requestTimeout;
            if (RequestInfoParser.QueryValue(query, "timeout") is { } text && Portcullis.Configuration.GoDuration.TryParse(text, out var user)
                && user > TimeSpan.Zero && user < requestTimeout)
            {
                deadline = user;
            }
            limit = deadline / 4;
        }
        return limit > Maximum ? Maximum : limit;
    }
}
