using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Portcullis.Authentication;
using Portcullis.Configuration;

namespace Portcullis.Gateway.Upstream;

/// <summary>
/// The identity lines of requests on their way upstream, held until <see cref="UpstreamHeaderFilter"/> writes them.
/// HttpClient joins repeated header values into one line (<c>Impersonate-Group: a, b</c>) while kube-apiserver reads one
/// value per line, so the identity cannot travel as ordinary headers. Instead the request carries one marker line,
/// <c>{MarkerName}: {nonce}</c>, and the filter on the upstream connection replaces it with the block registered under
/// that nonce. Nothing of the identity passes through the header namespace: the marker's name is random per client (and
/// every client header named <c>X-Portcullis-*</c> is stripped anyway), its value is an unguessable 128-bit nonce that
/// only this registry hands out, and the block is built from validated values by <see cref="UpstreamIdentity"/>.
/// A registration lives exactly as long as its request (see <see cref="Registration"/>).
/// </summary>
internal sealed class IdentityBlocks
{
    private readonly ConcurrentDictionary<string, byte[]> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public IdentityBlocks()
    {
        MarkerName = "X-Portcullis-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        MarkerNameBytes = Encoding.ASCII.GetBytes(MarkerName);
        _lookup = _pending.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>The marker header's name: per instance, random, never sent to a client.</summary>
    public string MarkerName { get; }

    internal byte[] MarkerNameBytes { get; }

    /// <summary>How many registrations are open (tests check none outlives its request).</summary>
    public int Pending => _pending.Count;

    /// <summary>Adds the marker line for <paramref name="block"/> to <paramref name="headers"/>; dispose to forget it.</summary>
    public Registration Register(HttpRequestHeaders headers, byte[] block)
    {
        var nonce = NewNonce();
        _pending[nonce] = block;
        headers.Remove(MarkerName);
        headers.TryAddWithoutValidation(MarkerName, nonce);
        return new Registration(this, nonce);
    }

    // Random bytes are drawn from the CSPRNG in batches: one call per 256 nonces instead of one per request.
    [ThreadStatic]
    private static byte[]? t_random;
    [ThreadStatic]
    private static int t_used;

    private static string NewNonce()
    {
        var random = t_random ??= new byte[16 * 256];
        if (t_used == 0 || t_used >= random.Length)
        {
            RandomNumberGenerator.Fill(random);
            t_used = 0;
        }
        var nonce = Convert.ToHexStringLower(random, t_used, 16);
        random.AsSpan(t_used, 16).Clear(); // a nonce handed out is not kept in memory longer than needed
        t_used += 16;
        return nonce;
    }

    /// <summary>The block registered under <paramref name="nonce"/> (ASCII bytes), if its request is still in flight.</summary>
    public bool TryGet(ReadOnlySpan<byte> nonce, out byte[] block)
    {
        block = [];
        if (nonce.Length != 32)
        {
            return false;
        }
        Span<char> chars = stackalloc char[32];
        for (var i = 0; i < 32; i++)
        {
            chars[i] = (char)nonce[i];
        }
        if (_lookup.TryGetValue(chars, out var found))
        {
            block = found;
            return true;
        }
        return false;
    }

    /// <summary>
    /// One request's block. It stays valid until the request ends, so that HttpClient's retry of a request on a fresh
    /// connection (when a pooled one turned out closed) writes the same identity again; then it is gone.
    /// </summary>
    public sealed class Registration(IdentityBlocks owner, string nonce) : IDisposable
    {
        public void Dispose() => owner._pending.TryRemove(nonce, out _);
    }
}

/// <summary>Builds the identity lines the upstream receives for a user, in the configured identity mode.</summary>
internal static class UpstreamIdentity
{
    // Reserved by Kubernetes for what the apiserver itself derives (credential ids, bound pod); not impersonable.
    private const string ReservedExtraPrefix = "authentication.kubernetes.io/";

    /// <summary>
    /// The CRLF-terminated header lines for <paramref name="user"/>, UTF-8; an empty block in Passthrough mode. Null
    /// (and <paramref name="problem"/> naming the field) when a value could not be read back unchanged upstream.
    /// </summary>
    public static byte[]? Build(UserInfo user, string mode, out string? problem)
    {
        problem = null;
        var (userHeader, groupHeader, uidHeader, extraPrefix) = mode switch
        {
            UpstreamIdentityModes.Impersonate => ("Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-"),
            UpstreamIdentityModes.RequestHeader => ("X-Remote-User", "X-Remote-Group", "X-Remote-Uid", "X-Remote-Extra-"),
            _ => ("", "", "", ""),
        };
        if (userHeader.Length == 0)
        {
            return [];
        }
        var text = new StringBuilder(128);
        if (user.Name.Length == 0 || !Line(text, userHeader, user.Name))
        {
            problem = "user name";
            return null;
        }
        foreach (var group in user.Groups)
        {
            // kube-apiserver adds system:authenticated itself; sending it would need an extra impersonation right.
            if (group.Length == 0 || group == UserInfo.AuthenticatedGroup)
            {
                continue;
            }
            if (!Line(text, groupHeader, group))
            {
                problem = "group";
                return null;
            }
        }
        if (user.Uid.Length > 0 && !Line(text, uidHeader, user.Uid))
        {
            problem = "uid";
            return null;
        }
        foreach (var (key, values) in user.Extra)
        {
            if (key.StartsWith(ReservedExtraPrefix, StringComparison.Ordinal))
            {
                continue;
            }
            if (key.Length == 0 || !FieldValues.IsIdentityValue(key))
            {
                problem = "extra key";
                return null;
            }
            // kube-apiserver unescapes the key (url.PathUnescape); escaping makes any key a valid header name.
            var name = extraPrefix + Uri.EscapeDataString(key);
            foreach (var value in values)
            {
                if (value.Length > 0 && !Line(text, name, value))
                {
                    problem = "extra value";
                    return null;
                }
            }
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static bool Line(StringBuilder text, string name, string value)
    {
        if (!FieldValues.IsIdentityValue(value))
        {
            return false;
        }
        text.Append(name).Append(": ").Append(value).Append("\r\n");
        return true;
    }
}
