using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Portcullis.Authentication;
using static Portcullis.Audit.Tests.TestSupport;

namespace Portcullis.Audit.Tests;

public sealed partial class LogBackendTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly AuditPolicy MetadataOnCompletion = AuditPolicyLoader.Parse("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: ["RequestReceived"]
        rules:
        - level: Metadata
        """, "policy.yaml");

    private static readonly UserInfo Alice = User("alice", "dev");

    private static AuditEvent Event(string id, int padding = 0) => new()
    {
        Level = AuditLevel.Metadata,
        AuditId = id,
        Stage = AuditStage.ResponseComplete,
        RequestUri = "/api/v1/namespaces/default/pods/web-1" + (padding > 0 ? "?pad=" + new string('p', padding) : ""),
        Verb = "get",
        User = Alice,
        SourceIps = ["10.0.0.1"],
        ObjectRef = new AuditObjectReference("pods", "default", "web-1", "", "v1"),
        ResponseStatus = new AuditResponseStatus(200),
        RequestReceivedTimestamp = DateTime.UtcNow,
        StageTimestamp = DateTime.UtcNow,
    };

    private static List<string> ReadIds(IEnumerable<string> files)
    {
        var ids = new List<string>();
        foreach (var file in files)
        {
            foreach (var line in File.ReadLines(file))
            {
                using var doc = JsonDocument.Parse(line); // every line is one valid JSON object
                Assert.Equal("Event", doc.RootElement.GetProperty("kind").GetString());
                ids.Add(doc.RootElement.GetProperty("auditID").GetString()!);
            }
        }
        return ids;
    }

    [Theory]
    [InlineData(AuditMode.Blocking)]
    [InlineData(AuditMode.BlockingStrict)]
    [InlineData(AuditMode.Batch)]
    public async Task Twenty_thousand_requests_from_fifty_writers_give_exactly_one_line_each(AuditMode mode)
    {
        var path = _dir.File("audit.log");
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        // In-process writers never wait for I/O, so they can enqueue all 20,000 events before the writer loop runs
        // once; the buffer holds the whole burst so the test measures loss, not kube-apiserver's overflow policy
        // (which Batch_overflow_is_dropped_and_counted covers).
        var backend = new AuditLogBackend(new AuditLogOptions
        {
            Path = path,
            Mode = mode,
            Batch = AuditBatchOptions.LogDefaults with { BufferSize = 20_000 },
        }, metrics);
        var sink = new AuditSink(MetadataOnCompletion, [backend], metrics);
        const int writers = 50, perWriter = 400;
        var info = Request("GET", "/api/v1/namespaces/default/pods/web-1");

        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < perWriter; i++)
            {
                var audit = sink.BeginRequest($"{w}-{i}", "/api/v1/namespaces/default/pods/web-1", "get", Alice, ["10.0.0.1"], "test",
                    info, DateTime.UtcNow);
                Assert.False((await audit.EmitAsync(AuditStage.RequestReceived)).Failed);
                audit.SetResponseStatus(200);
                Assert.False((await audit.EmitAsync(AuditStage.ResponseComplete)).Failed);
            }
        }))).WithTimeout();
        await sink.ShutdownAsync().WithTimeout();

        var ids = ReadIds([path]);
        Assert.Equal(writers * perWriter, ids.Count);
        Assert.Equal(writers * perWriter, ids.Distinct().Count());
        Assert.Equal(writers * perWriter, counts.EventsTotal);
        Assert.Equal(0, counts.Errors("log"));
        Assert.Equal(0, counts.Dropped("log"));
        Assert.Equal(writers * perWriter, counts.LevelCount(AuditLevel.Metadata));
    }

    [Fact]
    public async Task Batch_mode_shutdown_in_the_middle_of_a_stream_writes_every_accepted_event()
    {
        var path = _dir.File("audit.log");
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        var backend = new AuditLogBackend(new AuditLogOptions
        {
            Path = path,
            Mode = AuditMode.Batch,
            Batch = AuditBatchOptions.LogDefaults with { BufferSize = 100_000, MaxBatchSize = 50 },
        }, metrics);
        var sink = new AuditSink(MetadataOnCompletion, [backend], metrics);
        using var halfway = new SemaphoreSlim(0);
        var sent = 0;
        var producers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 5_000; i++)
            {
                await sink.ProcessAsync(Event($"{w}-{i}"));
                if (Interlocked.Increment(ref sent) == 10_000)
                {
                    halfway.Release();
                }
            }
        })).ToArray();

        await halfway.WaitAsync(TestSupport.Timeout);
        await sink.ShutdownAsync().WithTimeout();
        await Task.WhenAll(producers).WithTimeout();

        var ids = ReadIds([path]);
        Assert.True(ids.Count >= 10_000, $"only {ids.Count} lines");
        Assert.Equal(ids.Count, ids.Distinct().Count());
        // Everything not written was refused after shutdown and counted; nothing accepted is lost.
        Assert.Equal(40_000, ids.Count + counts.Dropped("log"));
        Assert.Equal(0, counts.Errors("log"));
    }

    [Fact]
    public async Task In_blocking_mode_the_line_is_in_the_file_when_the_write_returns()
    {
        var path = _dir.File("audit.log");
        await using var backend = new AuditLogBackend(new AuditLogOptions { Path = path, Mode = AuditMode.Blocking }, new AuditMetrics());

        for (var i = 0; i < 3; i++)
        {
            await backend.ProcessAsync([Event(i.ToString(CultureInfo.InvariantCulture))]).WithTimeout();
            using var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            Assert.Equal(i + 1, new StreamReader(reader).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
    }

    [Fact]
    public async Task Batch_mode_flush_writes_everything_accepted_so_far()
    {
        var path = _dir.File("audit.log");
        await using var backend = new AuditLogBackend(new AuditLogOptions
        {
            Path = path,
            Mode = AuditMode.Batch,
            Batch = AuditBatchOptions.LogDefaults with { MaxBatchWait = TimeSpan.FromMinutes(10), MaxBatchSize = 1000 },
        }, new AuditMetrics());
        for (var i = 0; i < 10; i++)
        {
            await backend.ProcessAsync([Event(i.ToString(CultureInfo.InvariantCulture))]).WithTimeout();
        }

        await backend.FlushAsync().WithTimeout();

        Assert.Equal(10, ReadIds([path]).Count);
    }

    [Fact]
    public async Task Batch_overflow_is_dropped_and_counted()
    {
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        var errors = new List<AuditBackendError>();
        // A directory as the path: every write fails, so the loop is slow enough to fill a buffer of 5.
        await using var backend = new AuditLogBackend(new AuditLogOptions
        {
            Path = _dir.File("audit.log"),
            Mode = AuditMode.Batch,
            Batch = AuditBatchOptions.LogDefaults with { BufferSize = 5, MaxBatchSize = 1 },
        }, metrics, e => { lock (errors) { errors.Add(e); } });
        var events = Enumerable.Range(0, 1000).Select(i => Event(i.ToString(CultureInfo.InvariantCulture))).ToArray();

        await backend.ProcessAsync(events).WithTimeout();
        await backend.ShutdownAsync().WithTimeout();

        Assert.True(counts.Dropped("log") > 0);
        Assert.Equal(1000, counts.Dropped("log") + ReadIds([_dir.File("audit.log")]).Count);
        lock (errors)
        {
            Assert.Contains(errors, e => e.Message.Contains("buffer full", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task The_file_is_created_with_mode_0600()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // Unix permissions only; the gateway runs on Linux.
        }
        var path = _dir.File("sub/dir/audit.log");
        await using var backend = new AuditLogBackend(new AuditLogOptions { Path = path }, new AuditMetrics());

        await backend.ProcessAsync([Event("a")]).WithTimeout();

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [GeneratedRegex(@"^audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$")]
    private static partial Regex BackupName();

    [Fact]
    public async Task MaxSize_1_rotates_at_one_megabyte_and_MaxBackup_keeps_the_newest_files()
    {
        var path = _dir.File("audit.log");
        await using var backend = new AuditLogBackend(new AuditLogOptions { Path = path, MaxSizeMegabytes = 1, MaxBackups = 2 }, new AuditMetrics());
        var lineLength = Event("00000", 1000).Json.Length + 1;
        var count = (int)(4.5 * 1024 * 1024 / lineLength);

        for (var i = 0; i < count; i++)
        {
            await backend.ProcessAsync([Event(i.ToString("D5", CultureInfo.InvariantCulture), 1000)]).WithTimeout();
        }
        await backend.ShutdownAsync().WithTimeout();

        var files = Directory.GetFiles(_dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(3, files.Count); // the live file and two backups
        Assert.Contains("audit.log", files);
        Assert.All(files.Where(f => f != "audit.log"), f => Assert.Matches(BackupName(), f));
        Assert.All(Directory.GetFiles(_dir.Path), f => Assert.True(new FileInfo(f).Length <= 1024 * 1024));
        // The newest events survive, in order, with nothing duplicated.
        var backups = Directory.GetFiles(_dir.Path, "audit-*.log").Order(StringComparer.Ordinal);
        var ids = ReadIds([.. backups, path]);
        Assert.Equal((count - 1).ToString("D5", CultureInfo.InvariantCulture), ids[^1]);
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        Assert.True(ids.Count < count);
        var perFile = (1024 * 1024) / lineLength;
        Assert.True(ids.Count >= 2 * perFile, $"{ids.Count} lines kept, expected at least two full files of {perFile}");
    }

    [Fact]
    public async Task Rotation_without_MaxBackup_keeps_every_line()
    {
        var path = _dir.File("audit.log");
        await using var backend = new AuditLogBackend(new AuditLogOptions { Path = path, MaxSizeMegabytes = 1, Mode = AuditMode.Batch }, new AuditMetrics());
        const int count = 3000;

        await backend.ProcessAsync([.. Enumerable.Range(0, count).Select(i => Event(i.ToString("D5", CultureInfo.InvariantCulture), 1000))]).WithTimeout();
        await backend.ShutdownAsync().WithTimeout();

        var ids = ReadIds(Directory.GetFiles(_dir.Path, "audit-*.log").Order(StringComparer.Ordinal).Append(path));
        Assert.Equal(count, ids.Count);
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        Assert.True(Directory.GetFiles(_dir.Path).Length >= 3);
    }

    [Fact]
    public async Task MaxAge_removes_backups_older_than_the_limit()
    {
        var path = _dir.File("audit.log");
        var old = _dir.File("audit-2020-01-01T00-00-00.000.log");
        var recent = _dir.File($"audit-{DateTime.UtcNow.AddDays(-1):yyyy-MM-dd'T'HH-mm-ss.fff}.log");
        File.WriteAllText(old, "{}\n");
        File.WriteAllText(recent, "{}\n");
        File.WriteAllText(_dir.File("unrelated.log"), "x");
        await using var backend = new AuditLogBackend(new AuditLogOptions { Path = path, MaxSizeMegabytes = 1, MaxAgeDays = 7 }, new AuditMetrics());

        for (var i = 0; i < 1200; i++)
        {
            await backend.ProcessAsync([Event("e", 1000)]).WithTimeout();
        }

        Assert.False(File.Exists(old));
        Assert.True(File.Exists(recent));
        Assert.True(File.Exists(_dir.File("unrelated.log")));
    }

    [Fact]
    public async Task Backups_left_by_an_earlier_run_obey_MaxBackup_when_the_file_is_first_opened()
    {
        for (var i = 1; i <= 5; i++)
        {
            File.WriteAllText(_dir.File($"audit-2026-11-0{i}T00-00-00.000.log"), "{}\n");
        }
        await using var backend = new AuditLogBackend(new AuditLogOptions { Path = _dir.File("audit.log"), MaxSizeMegabytes = 1, MaxBackups = 2 }, new AuditMetrics());

        await backend.ProcessAsync([Event("a")]).WithTimeout();

        Assert.Equal(["audit-2026-11-04T00-00-00.000.log", "audit-2026-11-05T00-00-00.000.log", "audit.log"],
            Directory.GetFiles(_dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(AuditMode.Blocking)]
    [InlineData(AuditMode.BlockingStrict)]
    public async Task An_unwritable_path_fails_the_write_in_blocking_modes(AuditMode mode)
    {
        File.WriteAllText(_dir.File("not-a-directory"), "");
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        var reported = new List<AuditBackendError>();
        var backend = new AuditLogBackend(new AuditLogOptions { Path = _dir.File("not-a-directory/audit.log"), Mode = mode }, metrics, reported.Add);
        var policy = AuditPolicyLoader.Parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n", "p.yaml");
        await using var sink = new AuditSink(policy, [backend], metrics);

        var ex = await Assert.ThrowsAsync<AuditBackendException>(() => backend.ProcessAsync([Event("direct")]).AsTask()).WithTimeout();
        var audit = sink.BeginRequest("id", "/api/v1/namespaces/d/pods/p", "get", Alice, [], "", Request("GET", "/api/v1/namespaces/d/pods/p"), DateTime.UtcNow);
        var result = await audit.EmitAsync(AuditStage.RequestReceived).WithTimeout();

        Assert.Equal("log", ex.Plugin);
        Assert.True(result.Failed);
        Assert.True(result.RejectRequest);
        Assert.Equal(mode == AuditMode.BlockingStrict, result.StrictFailure);
        Assert.Equal(2, counts.Errors("log"));
        Assert.Equal(1, counts.RequestsRejected);
        Assert.Equal(2, reported.Count);
        Assert.All(reported, r => Assert.Equal("log", r.Plugin));
    }

    [Fact]
    public async Task An_unwritable_path_is_counted_in_batch_mode()
    {
        File.WriteAllText(_dir.File("not-a-directory"), "");
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        await using var backend = new AuditLogBackend(new AuditLogOptions { Path = _dir.File("not-a-directory/audit.log"), Mode = AuditMode.Batch }, metrics);

        await backend.ProcessAsync([Event("a"), Event("b"), Event("c")]).WithTimeout();
        await backend.FlushAsync().WithTimeout();

        Assert.Equal(3, counts.Errors("log"));
    }

    [Fact]
    public async Task A_full_disk_fails_the_write_and_the_next_write_tries_again()
    {
        if (!File.Exists("/dev/full"))
        {
            return; // Linux's always-full device is the honest stand-in for a full disk.
        }
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        await using var backend = new AuditLogBackend(new AuditLogOptions { Path = "/dev/full", MaxSizeMegabytes = 1 }, metrics);

        await Assert.ThrowsAsync<AuditBackendException>(() => backend.ProcessAsync([Event("a")]).AsTask()).WithTimeout();
        await Assert.ThrowsAsync<AuditBackendException>(() => backend.ProcessAsync([Event("b")]).AsTask()).WithTimeout();

        Assert.Equal(2, counts.Errors("log"));
        Assert.True(File.Exists("/dev/full")); // never rotated away
    }

    [Fact]
    public async Task Blocking_writes_after_shutdown_fail_and_batch_writes_are_dropped()
    {
        using var metrics = new AuditMetrics();
        using var counts = new AuditCounts(metrics);
        var blocking = new AuditLogBackend(new AuditLogOptions { Path = _dir.File("a.log") }, metrics);
        var batch = new AuditLogBackend(new AuditLogOptions { Path = _dir.File("b.log"), Mode = AuditMode.Batch }, metrics);
        await blocking.ShutdownAsync().WithTimeout();
        await batch.ShutdownAsync().WithTimeout();

        await Assert.ThrowsAsync<AuditBackendException>(() => blocking.ProcessAsync([Event("a")]).AsTask()).WithTimeout();
        await batch.ProcessAsync([Event("b")]).WithTimeout();

        Assert.Equal(1, counts.Errors("log"));
        Assert.Equal(1, counts.Dropped("log"));
    }
}
