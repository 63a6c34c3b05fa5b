using Portcullis.Authentication;
using Portcullis.Authorization;

namespace Portcullis.Audit.Tests;

internal static class TestSupport
{
    /// <summary>Time limit for any single await in a test.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static string Fixture(string relative) => Path.Combine(AppContext.BaseDirectory, "fixtures", relative);

    /// <summary>RequestInfo for "METHOD /path?query".</summary>
    public static RequestInfo Request(string method, string uri)
    {
        var q = uri.IndexOf('?', StringComparison.Ordinal);
        return q < 0 ? RequestInfoParser.Parse(method, uri, "") : RequestInfoParser.Parse(method, uri[..q], uri[(q + 1)..]);
    }

    /// <summary>An authenticated user with the given groups plus system:authenticated.</summary>
    public static UserInfo User(string name, params string[] groups) => UserInfo.Create(name, groups).WithAuthenticatedGroup();

    public static async Task WithTimeout(this Task task) => await task.WaitAsync(Timeout);

    public static async Task<T> WithTimeout<T>(this Task<T> task) => await task.WaitAsync(Timeout);

    public static async Task WithTimeout(this ValueTask task) => await task.AsTask().WaitAsync(Timeout);

    public static async Task<T> WithTimeout<T>(this ValueTask<T> task) => await task.AsTask().WaitAsync(Timeout);

    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("portcullis-audit-").FullName;

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }
}
