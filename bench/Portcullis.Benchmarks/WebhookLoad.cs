using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Portcullis.Benchmarks;

/// <summary>
/// A fixed-rate load of webhook reviews against a running <c>portcullis webhook</c>, as kube-apiserver sends them: HTTP/2
/// over mutual TLS, one connection, a review every 1/RATE seconds whatever the previous answers' latency (no coordinated
/// omission: a late answer does not delay the next send), evenly spaced or with Poisson arrivals. Prints
/// p50/p90/p99/p99.9/max of the answered reviews and how many were late to start (more than 0.5 ms behind their due
/// time), failed or not 200.
/// <code>
/// dotnet bench/Portcullis.Benchmarks/bin/Release/net10.0/Portcullis.Benchmarks.dll webhook-load URL CA CERT KEY [RATE] [SECONDS] [tokenreview|sar] [uniform|poisson]
/// </code>
/// </summary>
internal static class WebhookLoad
{
    private const string Usage =
        "usage: webhook-load URL CA CERT KEY [RATE=1000] [SECONDS=10] [tokenreview|sar] [--arrivals uniform|poisson] [--warmup SECONDS=5] [--metrics ADMIN_URL] [--label TEXT]";

    public static async Task<int> RunAsync(string[] args)
    {
        var positional = new List<string>();
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= args.Length || args[i] is not ("--arrivals" or "--warmup" or "--metrics" or "--label"))
                {
                    Console.Error.WriteLine($"unknown option or missing value: {args[i]}\n{Usage}");
                    return 2;
                }
                options[args[i]] = args[++i];
            }
            else
            {
                positional.Add(args[i]);
            }
        }
        if (positional.Count < 4)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var url = new Uri(positional[0]);
        using var ca = X509CertificateLoader.LoadCertificateFromFile(positional[1]);
        using var client = X509Certificate2.CreateFromPemFile(positional[2], positional[3]);
        var rate = positional.Count > 4 ? int.Parse(positional[4], CultureInfo.InvariantCulture) : 1000;
        var seconds = positional.Count > 5 ? int.Parse(positional[5], CultureInfo.InvariantCulture) : 10;
        var kind = positional.Count > 6 ? positional[6] : "tokenreview";
        var arrivals = options.GetValueOrDefault("--arrivals", "uniform");
        var warmup = int.Parse(options.GetValueOrDefault("--warmup", "5"), CultureInfo.InvariantCulture);
        var label = options.GetValueOrDefault("--label", "");
        if (kind is not ("tokenreview" or "sar") || arrivals is not ("uniform" or "poisson") || rate <= 0 || seconds <= 0 || warmup < 0)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var poisson = arrivals == "poisson";
        var metrics = options.TryGetValue("--metrics", out var admin) ? new ServerHistogram(new Uri(admin), kind == "sar" ? "SubjectAccessReview" : "TokenReview") : null;
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

        // Warm-up: the connection, the JIT (the server's tiered compilation included) and Portcullis' caches, at the same
        // rate, not measured.
        if (warmup > 0)
        {
            await RunAtRateAsync(rate, warmup, poisson, SendAsync, null);
        }
        var before = metrics is null ? null : await metrics.ReadAsync();
        using var jitter = new WakeUpJitter();
        var latencies = new List<double>(rate * seconds);
        var (sent, failed, late) = await RunAtRateAsync(rate, seconds, poisson, SendAsync, latencies);
        var overshoot = jitter.Stop();
        var after = metrics is null ? null : await metrics.ReadAsync();
        latencies.Sort();
        double P(double q) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label}{kind} {rate}/s ({arrivals}) for {seconds}s over HTTP/2 mTLS: sent {sent}, ok {latencies.Count}, failed {failed}, started >0.5 ms late {late}; round trip ms p50 {P(0.50):F3} p90 {P(0.90):F3} p99 {P(0.99):F3} p99.9 {P(0.999):F3} max {(latencies.Count == 0 ? double.NaN : latencies[^1]):F3}"));
        if (before is not null && after is not null)
        {
            Console.WriteLine($"{label}  server side: {ServerHistogram.Describe(before, after)}");
        }
        Console.WriteLine($"{label}  this machine: {overshoot}");
        return failed == 0 ? 0 : 1;
    }

    /// <summary>
    /// Sends <paramref name="rate"/> × <paramref name="seconds"/> reviews from one dedicated pacing thread that sleeps until
    /// each review's due time with <c>clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)</c> (microsecond precision, no
    /// spinning: a spinning sender would take one of the machine's cores from the server it measures; <c>Task.Delay</c>
    /// ticks every few milliseconds here and would send the reviews in bursts). Due times are evenly spaced, or with
    /// <paramref name="poisson"/> exponentially distributed gaps of the same mean (independent arrivals, as many API
    /// server goroutines asking at once produce). A review more than 0.5 ms behind its due time is counted late.
    /// </summary>
    private static async Task<(int Sent, int Failed, int Late)> RunAtRateAsync(int rate, int seconds, bool poisson, Func<Task<(bool Ok, double Ms)>> send, List<double>? latencies)
    {
        var total = rate * seconds;
        var tasks = new Task<(bool Ok, double Ms)>[total];
        var late = 0;
        var thread = new Thread(() =>
        {
            var random = new Random(20261205);
            var start = Stopwatch.GetTimestamp();
            var lateTicks = Stopwatch.Frequency / 2000;
            var dueSeconds = 0.0;
            for (var i = 0; i < total; i++)
            {
                dueSeconds = poisson ? dueSeconds - Math.Log(1 - random.NextDouble()) / rate : (double)i / rate;
                var due = start + (long)(dueSeconds * Stopwatch.Frequency);
                SleepUntil(due);
                if (Stopwatch.GetTimestamp() - due > lateTicks)
                {
                    late++;
                }
                tasks[i] = send();
            }
        })
        { IsBackground = true, Name = "webhook-load pacing", Priority = ThreadPriority.AboveNormal };
        thread.Start();
        await Task.Run(thread.Join);
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

    internal static void SleepUntil(long due)
    {
        // Stopwatch counts CLOCK_MONOTONIC nanoseconds on Linux; elsewhere fall back to millisecond sleeps.
        if (OperatingSystem.IsLinux() && Stopwatch.Frequency == 1_000_000_000)
        {
            var request = new Timespec { Seconds = due / 1_000_000_000, Nanoseconds = due % 1_000_000_000 };
            while (ClockNanosleep(ClockMonotonic, TimerAbsolute, ref request, IntPtr.Zero) == Eintr)
            {
            }
            return;
        }
        while (Stopwatch.GetTimestamp() < due)
        {
            Thread.Sleep(1);
        }
    }

    private const int ClockMonotonic = 1;
    private const int TimerAbsolute = 1;
    private const int Eintr = 4;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_nanosleep")]
    private static extern int ClockNanosleep(int clock, int flags, ref Timespec request, IntPtr remain);
}
