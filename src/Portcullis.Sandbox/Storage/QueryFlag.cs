namespace Portcullis.Sandbox.Storage;

/// <summary>
/// A boolean query parameter read as kube-apiserver reads it (Go's strconv.ParseBool): <c>1</c>, <c>t</c>, <c>T</c>,
/// <c>TRUE</c>, <c>true</c>, <c>True</c> are true. Python's client sends <c>follow=True</c>, kubectl <c>follow=true</c>.
/// </summary>
internal static class QueryFlag
{
    public static bool IsTrue(string? value) => value is "1" or "t" or "T" or "TRUE" or "true" or "True";
}
