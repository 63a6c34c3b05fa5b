using System.Net;

namespace Portcullis.Network;

/// <summary>Why a request counted as a failure against its source.</summary>
public enum FailureReason
{
    /// <summary>The request's credentials were refused (401).</summary>
    Authentication,

    /// <summary>The authenticated user was refused (403); counted only when <see cref="AutoBanOptions.CountAuthorizationFailures"/>.</summary>
    Authorization,
}

/// <summary>Why an address is banned. Few values, so that it can be a metric label.</summary>
public enum BanReason
{
    Authentication,
    Authorization,
    Manual,
}

/// <summary>Why a ban ended.</summary>
public enum UnbanReason
{
    /// <summary>Its duration passed.</summary>
    Expired,

    /// <summary>An administrator lifted it.</summary>
    Manual,

    /// <summary>The ban table was full (<see cref="AutoBanOptions.MaxBans"/>) and this ban expired soonest.</summary>
    Evicted,
}

public enum BanEventKind
{
    Banned,
    Unbanned,
}

/// <summary>One ban: who, why, after how many failures, at which repeat level, from when until when.</summary>
/// <param name="Level">0 for a first ban; each repeat ban while the address is remembered adds 1 and doubles the duration.</param>
/// <param name="Comment">The administrator's note for a manual ban or unban; null otherwise.</param>
public sealed record BanEntry(
    IPAddress Address,
    BanReason Reason,
    int Failures,
    int Level,
    DateTimeOffset BannedAt,
    DateTimeOffset ExpiresAt,
    string? Comment)
{
    public TimeSpan Duration => ExpiresAt - BannedAt;
}

/// <summary>A ban was imposed or lifted. The gateway logs, audits and counts from these.</summary>
/// <param name="UnbanReason">Set for <see cref="BanEventKind.Unbanned"/>.</param>
/// <param name="Comment">For a manual unban, the administrator's note; otherwise the ban's own comment.</param>
public sealed record BanEvent(BanEventKind Kind, BanEntry Ban, UnbanReason? UnbanReason, string? Comment)
{
    public IPAddress Address => Ban.Address;
    public BanReason Reason => Ban.Reason;
    public int Failures => Ban.Failures;
    public TimeSpan Duration => Ban.Duration;
    public DateTimeOffset ExpiresAt => Ban.ExpiresAt;
}

/// <summary>Settings of <see cref="AutoBanner"/>; the first five mirror <c>network.autoBan</c>.</summary>
public sealed record AutoBanOptions
{
    /// <summary>Failures from one source within <see cref="Window"/> that ban it.</summary>
    public int Failures { get; init; } = 20;

    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The first ban's length; each repeat doubles it, up to <see cref="MaxDuration"/>.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>The longest ban, and how long a source's repeat level is remembered after its last ban expired.</summary>
    public TimeSpan MaxDuration { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Where bans are saved and restored from; null or empty keeps them in memory only.</summary>
    public string? StateFile { get; init; }

    /// <summary>Whether 403s count as failures (they are ignored otherwise).</summary>
    public bool CountAuthorizationFailures { get; init; }

    /// <summary>Sources that are never banned, and whose failures are not even tracked.</summary>
    public CidrSet NeverBan { get; init; } = CidrSet.Empty;

    /// <summary>At most this many sources have failures tracked; the least recently failing one is forgotten first.</summary>
    public int MaxTrackedSources { get; init; } = 100_000;

    /// <summary>At most this many bans at once (and as many remembered repeat levels); the soonest to expire goes first.</summary>
    public int MaxBans { get; init; } = 100_000;

    /// <summary>How often expired bans are lifted (with their event) and a changed state file is written.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>The ban state file could not be read, parsed or written; the message names the file.</summary>
public sealed class AutoBanStateException : Exception
{
    public AutoBanStateException(string message) : base(message) { }
    public AutoBanStateException(string message, Exception inner) : base(message, inner) { }
    public AutoBanStateException() { }
}
