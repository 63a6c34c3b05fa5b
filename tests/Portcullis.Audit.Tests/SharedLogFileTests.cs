using System.Globalization;
using System.Text.Json;
using Portcullis.Authentication;
using static Portcullis.Audit.Tests.TestSupport;

namespace Portcullis.Audit.Tests;

/// <summary>
/// Two log backends on one path in one process (a reload A → B → A while a watch begun on the first A is still open, or a
/// reload that changes only the rotation fields) share one open file: no line is lost, overwritten or split, rotation
/// happens once with the newest backend's settings, and the file closes when the last of them is disposed.
/// </summary>
public sealed class SharedLogFileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

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

    /// <summary>Every line of every file is one whole JSON Event; returns their auditIDs.</summary>
    private static List<string> ReadIds(IEnumerable<string> files)
    {
        var ids = new List<string>();
        foreach (var file in files)
        {
            foreach (var line in File.ReadLines(file))
            {
                using var doc = JsonDocument.Parse(line);
                Assert.Equal("Event", doc.RootElement.GetProperty("kind").GetString());
                ids.Add(doc.RootElement.GetProperty("auditID").GetString()!);
            }
        }
        return ids;
    }

    private static AuditLogBackend Open(string path, AuditMode mode, int maxSizeMegabytes = 0, int maxBackups = 0) =>
        new(new AuditLogOptions
        {
            Path = path,
            Mode = mode,
            MaxSizeMegabytes = maxSizeMegabytes,
            MaxBackups = maxBackups,
            Batch = AuditBatchOptions.LogDefaults with { BufferSize = 10_000, MaxBatchSize = 37 },
        }, new AuditMetrics());

    /// <summary>Writes <paramref name="count"/> events one by one from each of <paramref name="writers"/> tasks.</summary>
    private static Task WriteAsync(AuditLogBackend backend, string prefix, int count, int writers = 4, int padding = 0) =>
        Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var i = w; i < count; i += writers)
            {
                await backend.ProcessAsync([Event(prefix + "-" + i.ToString(CultureInfo.InvariantCulture), padding)]);
            }
        })));

    private static bool IsOpenElsewhere(string path)
    {
        try
        {
            // A writer holds a shared lock on the file (FileShare is enforced on Unix too), so an exclusive open fails
            // while any backend still has it open.
            using var exclusive = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    [Theory]
    [InlineData(AuditMode.Blocking, AuditMode.Blocking)]
    [InlineData(AuditMode.Blocking, AuditMode.Batch)]
    [InlineData(AuditMode.Batch, AuditMode.Batch)]
    public async Task Two_backends_on_one_path_write_every_event_exactly_once_as_a_whole_line(AuditMode modeA, AuditMode modeB)
    {
        var path = _dir.File("audit.log");
        var first = Open(path, modeA);
        var second = Open(path, modeB);
        // Both have written before the burst, so both would hold the file open at once.
        await first.ProcessAsync([Event("first-open")]).WithTimeout();
        await second.ProcessAsync([Event("second-open")]).WithTimeout();

        await Task.WhenAll(WriteAsync(first, "a", 500), WriteAsync(second, "b", 500)).WithTimeout();
        await first.DisposeAsync().WithTimeout();
        await second.DisposeAsync().WithTimeout();

        var expected = new[] { "first-open", "second-open" }
            .Concat(Enumerable.Range(0, 500).Select(i => "a-" + i.ToString(CultureInfo.InvariantCulture)))
            .Concat(Enumerable.Range(0, 500).Select(i => "b-" + i.ToString(CultureInfo.InvariantCulture)))
            .Order(StringComparer.Ordinal);
        Assert.Equal(expected, ReadIds([path]).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Two_backends_on_one_path_rotate_once_and_lose_no_line()
    {
        var path = _dir.File("audit.log");
        var first = Open(path, AuditMode.Blocking, maxSizeMegabytes: 1);
        var second = Open(path, AuditMode.Batch, maxSizeMegabytes: 1);

        // About 2.3 MB of events in 1,000 lines from both at once: at least two rotations, none of them under the other.
        await Task.WhenAll(WriteAsync(first, "a", 1000, padding: 1000), WriteAsync(second, "b", 1000, padding: 1000)).WithTimeout();
        await first.DisposeAsync().WithTimeout();
        await second.DisposeAsync().WithTimeout();

        var files = Directory.GetFiles(_dir.Path, "audit*.log");
        Assert.True(files.Length >= 3, $"expected at least two rotations, found {files.Length} file(s)");
        Assert.All(files, f => Assert.True(new FileInfo(f).Length <= 1024 * 1024, $"{f} is past maxSize"));
        var ids = ReadIds(files);
        Assert.Equal(2000, ids.Count);
        Assert.Equal(2000, ids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task Rotation_follows_the_newest_open_backend_and_the_file_closes_with_the_last()
    {
        var path = _dir.File("audit.log");
        var older = Open(path, AuditMode.Blocking); // never rotates
        await older.ProcessAsync([Event("older-0", 1000)]).WithTimeout();
        var newer = Open(path, AuditMode.Blocking, maxSizeMegabytes: 1, maxBackups: 1);

        // The older backend's writes rotate with the newer one's settings: 1 MB, one backup kept.
        for (var i = 0; i < 2500; i++)
        {
            await older.ProcessAsync([Event("older-" + (i + 1).ToString(CultureInfo.InvariantCulture), 1000)]).WithTimeout();
        }
        Assert.Equal(2, Directory.GetFiles(_dir.Path, "audit*.log").Length);
        Assert.True(new FileInfo(path).Length <= 1024 * 1024);

        await newer.DisposeAsync().WithTimeout();
        Assert.True(IsOpenElsewhere(path), "the older backend still writes the file");

        // With the newer backend gone, the older one's settings apply again: no rotation.
        for (var i = 0; i < 1200; i++)
        {
            await older.ProcessAsync([Event("late-" + i.ToString(CultureInfo.InvariantCulture), 1000)]).WithTimeout();
        }
        Assert.Equal(2, Directory.GetFiles(_dir.Path, "audit*.log").Length);
        Assert.True(new FileInfo(path).Length > 1024 * 1024, "the file was rotated after the newer backend was disposed");

        await older.DisposeAsync().WithTimeout();
        Assert.False(IsOpenElsewhere(path), "the file is still open after the last backend was disposed");

        // A backend opened afterwards appends to the same file.
        var lines = File.ReadLines(path).Count();
        var again = Open(path, AuditMode.Blocking);
        await again.ProcessAsync([Event("again")]).WithTimeout();
        await again.DisposeAsync().WithTimeout();
        Assert.Equal(lines + 1, File.ReadLines(path).Count());
        Assert.Equal("again", ReadIds([path])[^1]);
    }
}
