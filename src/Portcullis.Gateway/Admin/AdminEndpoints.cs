using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Portcullis.Gateway.Diagnostics;
using Portcullis.Gateway.Snapshots;
using Prometheus;

namespace Portcullis.Gateway.Admin;

/// <summary>The plain-HTTP admin listener: health, liveness, readiness, Prometheus metrics and the bans (<see cref="BanEndpoints"/>).</summary>
internal static class AdminEndpoints
{
    public static void Map(WebApplication admin, SnapshotHolder snapshots, UpstreamProbe probe, GatewayMetrics metrics, Portcullis.Gateway.Pipeline.SourceBans bans)
    {
        BanEndpoints.Map(admin, bans);
        admin.MapGet("/healthz", () => Results.Text("ok"));
        admin.MapGet("/livez", () => Results.Text("ok"));
        admin.MapGet("/readyz", () =>
        {
            _ = snapshots.Current; // a snapshot exists once the host is built: the config is loaded
            return probe.LastError is { } error
                ? Results.Text($"[-]upstream failed: {error}\nreadyz check failed", statusCode: 503)
                : Results.Text("ok");
        });
        admin.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.Registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
        });
    }
}
