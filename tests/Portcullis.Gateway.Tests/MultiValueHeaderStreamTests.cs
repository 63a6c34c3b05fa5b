using System.Text;
using Portcullis.Gateway.Forwarding;

namespace Portcullis.Gateway.Tests;

public sealed class MultiValueHeaderStreamTests
{
    private static async Task<string> WriteAsync(int chunkSize, params string[] parts)
    {
        var sink = new MemoryStream();
        await using var stream = new MultiValueHeaderStream(sink);
        var bytes = Encoding.Latin1.GetBytes(string.Concat(parts));
        for (var i = 0; i < bytes.Length; i += chunkSize)
        {
            await stream.WriteAsync(bytes.AsMemory(i, Math.Min(chunkSize, bytes.Length - i)));
        }
        return Encoding.Latin1.GetString(sink.ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task Splits_header_lines_and_leaves_bodies_alone_across_keep_alive_requests(int chunkSize)
    {
        const string body1 = "X-Portcullis-Split-Impersonate-Group: body,not,headers\r\n\r\n";
        var output = await WriteAsync(chunkSize,
            "POST /a HTTP/1.1\r\nHost: h\r\nX-Portcullis-Split-Impersonate-Group: dev,qa%2C%20team\r\nContent-Length: ", body1.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), "\r\n\r\n", body1,
            "PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Portcullis-Split-X-Remote-Group: a\r\n\r\n",
            "5\r\nX-Por\r\n19;ext=1\r\ntcullis-Split-Nope: x,y\r\n\r\n0\r\n\r\n",
            "GET /c HTTP/1.1\r\nHost: h\r\nX-Portcullis-Split-Impersonate-Extra-scopes: read,write\r\n\r\n");

        Assert.Equal(
            "POST /a HTTP/1.1\r\nHost: h\r\nImpersonate-Group: dev\r\nImpersonate-Group: qa, team\r\nContent-Length: " + body1.Length + "\r\n\r\n" + body1 +
            "PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Remote-Group: a\r\n\r\n" +
            "5\r\nX-Por\r\n19;ext=1\r\ntcullis-Split-Nope: x,y\r\n\r\n0\r\n\r\n" +
            "GET /c HTTP/1.1\r\nHost: h\r\nImpersonate-Extra-scopes: read\r\nImpersonate-Extra-scopes: write\r\n\r\n",
            output);
    }

    [Fact]
    public async Task After_an_upgrade_request_everything_passes_through()
    {
        var output = await WriteAsync(5,
            "GET /exec HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Portcullis-Split-Impersonate-Group: g\r\n\r\n",
            "X-Portcullis-Split-Impersonate-Group: tunnel-bytes\r\n\r\n");

        Assert.EndsWith("Impersonate-Group: g\r\n\r\nX-Portcullis-Split-Impersonate-Group: tunnel-bytes\r\n\r\n", output);
    }
}
