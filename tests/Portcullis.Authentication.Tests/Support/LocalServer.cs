using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Portcullis.Authentication.Tests.Support;

/// <summary>A real Kestrel server on 127.0.0.1:0 (HTTP, or HTTPS with a test certificate) running one request delegate.</summary>
internal sealed class LocalServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LocalServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public static async Task<LocalServer> StartAsync(RequestDelegate handler, X509Certificate2? serverCertificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (serverCertificate is not null)
            {
                listen.UseHttps(serverCertificate);
            }
        }));
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync().WaitAsync(Wait.Timeout);
        var address = new Uri(app.Urls.First().Replace("localhost", "127.0.0.1", StringComparison.Ordinal));
        return new LocalServer(app, address);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(Wait.Timeout);
        await _app.DisposeAsync();
    }
}
