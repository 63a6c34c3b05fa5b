using System.Text;
using Portcullis.Gateway.Tests.Infrastructure;

namespace Portcullis.Gateway.Tests;

public sealed partial class LongRunningWireTests
{
    // The gateway's own response field (the Audit-ID the client correlates with the gateway's audit log, set before the
    // request is forwarded) is not the upstream connection's to remove: an upstream that names it in Connection, as it
    // may name any field of its own, leaves the client the same Audit-ID as an upstream that does not.
    [Theory]
    [InlineData("keep-alive, Audit-Id")]
    [InlineData("audit-id , content-length")]
    public async Task An_upstream_naming_the_gateways_own_field_in_Connection_does_not_remove_it(string connection)
    {
        var plain = await AuditIdsAsync(UpstreamHead("application/json"));
        var nominated = await AuditIdsAsync(UpstreamHead("application/json").Replace("Connection: keep-alive, X-Hop", "Connection: " + connection + ", X-Hop", StringComparison.Ordinal));
        Assert.Contains("client-chosen-audit-id", string.Join(",", plain), StringComparison.Ordinal);
        Assert.Equal(plain, nominated);
    }

    private static async Task<string[]> AuditIdsAsync(string upstreamHead)
    {
        var (gw, upstream) = await StartAsync(upstreamHead);
        await using var _ = gw;
        await using var __ = upstream;
        await using var tls = await RawHttps.ConnectAsync(gw, gw.Pki.IssueClient("jane", "developers")).WaitAsync(Timeout);
        var client = new ByteReader(tls);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(
            "GET /api/v1/namespaces/dev/pods?watch=true HTTP/1.1\r\nHost: localhost\r\nAudit-ID: client-chosen-audit-id\r\n\r\n"));
        var answer = await upstream.Answers.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        var head = Encoding.Latin1.GetString(await ReadHeadAsync(client));
        answer.Send("0\r\n\r\n");
        answer.End();
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", head, StringComparison.Ordinal);
        var fields = Fields(head);
        Assert.Empty(Values(fields, "X-Hop"));
        return Values(fields, "Audit-ID");
    }
}
