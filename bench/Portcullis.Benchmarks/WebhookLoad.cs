using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portcullis.Benchmarks;

/// <summary>
/// A fixed-rate load of webhook reviews against a running <c>portcullis webhook</c>, as kube-apiserver sends them: HTTP/2
/// over mutual TLS, one connection, a review every 1/RATE seconds whatever the previous answers' latency (no coordinated
/// omission: a late answer does not delay the next send). Prints p50/p90/p99/p99.9/max of the answered reviews and how
/// many were late to start (more than 2 ms: the pacing tick is about 1 ms), failed or not 200.
/// <code>
/// dotnet bench/Portcullis.Benchmarks/bin/Release/net10.0/Portcullis.Benchmarks.dll webhook-load URL CA CERT KEY [RATE] [SECONDS] [tokenreview|sar]
/// </code>
/// </summary>
internal static class WebhookLoad
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 5)
        {
            Console.Error.WriteLine("usage: webhook-load URL CA CERT KEY [RATE=1000] [SECONDS=10] [tokenreview|sar]");
            return 2;
        }
        var url = new Uri(args[1]);
        using var ca = X509CertificateLoader.LoadCertificateFromFile(args[2]);
        using var client = X509Certificate2.CreateFromPemFile(args[3], args[4]);
        var rate = args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : 1000;
        var seconds = args.Length > 6 ? int.Parse(args[6], CultureInfo.InvariantCulture) : 10;
        var kind = args.Length > 7 ? args[7] : "tokenreview";
        var (path, body) = kind == "sar"
            ? ("/authorize", """{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"namespace":"dev","verb":"get","version":"v1","resource":"pods"},"user":"jane","groups":["developers","system:authenticated"],"uid":"u-1"}}""")
            : ("/authenticate", """{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"token-jane-0123456789abcdef0123456789abcdef"}}""");
        var payload = Encoding.UTF8.GetBytes(body);

        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [client],
                LocalCertificateSelectionCallback = (_, _, _, _, _) => client,
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is X509Certificate2 c && c.Issuer == ca.Subject,
            },
        };
        using var http = new HttpClient(handler)
        {
            BaseAddress = url,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(10),
        };

        async Task<(bool Ok, double Ms)> SendAsync()
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                using var content = new ByteArrayContent(payload);
                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                using var response = await http.PostAsync(path, content);
                await response.Content.ReadAsByteArrayAsync();
                return (response.StatusCode == HttpStatusCode.OK, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            catch (HttpRequestException)
            {
                return (false, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }

        // Warm-up: the connection, the JIT and Portcullis' caches (2 s at the same rate, not measured).
        await RunAtRateAsync(rate, 2, SendAsync, null);
        var latencies = new List<double>(rate * seconds);
        var (sent, failed, late) = await RunAtRateAsync(rate, seconds, SendAsync, latencies);
        latencies.Sort();
        double P(double q) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{kind} {rate}/s for {seconds}s over HTTP/2 mTLS: sent {sent}, ok {latencies.Count}, failed {failed}, started >2 ms late {late}; latency ms p50 {P(0.50):F3} p90 {P(0.90):F3} p99 {P(0.99):F3} p99.9 {P(0.999):F3} max {(latencies.Count == 0 ? double.NaN : latencies[^1]):F3}"));
        return failed == 0 ? 0 : 1;
    }

    private static async Task<(int Sent, int Failed, int Late)> RunAtRateAsync(int rate, int seconds, Func<Task<(bool Ok, double Ms)>> send, List<double>? latencies)
    {
        var total = rate * seconds;
        var tasks = new List<Task<(bool Ok, double Ms)>>(total);
        var start = Stopwatch.GetTimestamp();
        var late = 0;
        // Paced by the clock without spinning (a spinning sender would take one of the machine's cores from the server
        // it measures): each tick sends every review that is due by now, so a late tick catches up instead of drifting.
        var i = 0;
        while (i < total)
        {
            var now = Stopwatch.GetElapsedTime(start);
            while (i < total && TimeSpan.FromSeconds((double)i / rate) <= now)
            {
                if (now - TimeSpan.FromSeconds((double)i / rate) > TimeSpan.FromMilliseconds(2))
                {
                    late++;
                }
                tasks.Add(Task.Run(send));
                i++;
            }
            if (i < total)
            {
                await Task.Delay(1);
            }
        }
        var results = await Task.WhenAll(tasks);
        var failed = 0;
        foreach (var (ok, ms) in results)
        {
            if (ok)
            {
                latencies?.Add(ms);
            }
            else
            {
                failed++;
            }
        }
        return (total, failed, late);
    }
}
