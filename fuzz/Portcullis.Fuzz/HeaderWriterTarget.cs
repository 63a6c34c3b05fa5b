using System.Text;
using Portcullis.Authentication;
using Portcullis.Configuration;
using Portcullis.Gateway.Pipeline;
using Portcullis.Gateway.Upstream;

namespace Portcullis.Fuzz;

/// <summary>
/// The fuzz target over the gateway's header writer: what reaches the upstream wire from an identity and a set of client
/// headers (<see cref="UpstreamIdentity"/>, <see cref="HeaderHygiene"/>, <see cref="FieldValues"/>) and the filter that
/// writes it (<see cref="UpstreamHeaderFilter"/>), fed in fuzzer-chosen pieces. It throws
/// <see cref="InvariantException"/> when an invariant breaks; any other exception is a crash too.
/// <list type="bullet">
/// <item>Mode 0 (structured): the bytes decode into an identity, client headers and a body. Either the gateway refuses
/// (an identity value or client header value it cannot write unchanged), or the wire carries exactly the head HttpClient
/// would write with the marker line replaced by the identity lines, then the body, byte for byte, and the identity lines
/// are exactly one per value with no control character.</item>
/// <item>Mode 1 (raw): the bytes go to the filter as a request stream the gateway did not build. The filter must refuse
/// it with <see cref="UpstreamHeaderException"/> (no head without a live nonce passes) and never throw anything else.</item>
/// </list>
/// </summary>
public static class HeaderWriterTarget
{
    private const byte Separator = 0xFF;

    public static void Run(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2)
        {
            return;
        }
        var chunk = 1 + data[1] % 64;
        if (data[0] % 2 == 0)
        {
            Structured(data[2..], chunk, data[0] % 4 == 0 ? UpstreamIdentityModes.Impersonate : UpstreamIdentityModes.RequestHeader);
        }
        else
        {
            Raw(data[2..], chunk);
        }
    }

    private static void Structured(ReadOnlySpan<byte> data, int chunk, string mode)
    {
        // Fields separated by 0xFF: name, uid, groups (0xFE-separated), extra key, extra values, then header name/value
        // pairs, the last field is the body.
        var fields = Split(data, Separator);
        string Field(int i) => i < fields.Count ? Encoding.UTF8.GetString(fields[i]) : "";
        string[] List(int i) => i < fields.Count ? [.. Split(fields[i], 0xFE).Select(b => Encoding.UTF8.GetString(b))] : [];
        var groups = List(2);
        var extra = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        if (Field(3).Length > 0)
        {
            extra[Field(3)] = List(4);
        }
        var user = new UserInfo(Field(0), Field(1), groups, extra);
        var headers = new List<(string Name, string Value)>();
        for (var i = 5; i + 1 < fields.Count - 1; i += 2)
        {
            headers.Add((Encoding.Latin1.GetString(fields[i]), Encoding.Latin1.GetString(fields[i + 1])));
        }
        var body = fields.Count > 5 ? fields[^1] : [];

        var identity = UpstreamIdentity.Build(user, mode, out _);
        if (identity is null)
        {
            // Refused: the gateway must have had a reason it can name.
            Check(!Valid(user), "an identity whose values are all writable was refused");
            return;
        }
        Check(Valid(user), "an identity with an unwritable value was accepted");
        CheckIdentityLines(identity, user, mode);

        var blocks = new IdentityBlocks();
        using var request = new HttpRequestMessage();
        using var registration = blocks.Register(request.Headers, identity);
        var nonce = request.Headers.GetValues(blocks.MarkerName).Single();

        // What HttpClient writes: the request line, Host, the forwarded client headers, the marker, Content-Length.
        var head = new StringBuilder("POST /api/v1/namespaces/dev/configmaps HTTP/1.1\r\nHost: 127.0.0.1:6443\r\n");
        foreach (var (name, value) in headers)
        {
            var trimmed = value.Trim(' ', '\t');
            if (name.Length == 0 || !FieldValues.IsToken(Encoding.Latin1.GetBytes(name)) || HeaderHygiene.IsProtected(name)
                || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)
                || name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase))
            {
                continue; // never forwarded (HttpClient refuses bad names; the handler strips the rest)
            }
            if (!FieldValues.IsForwardable(trimmed))
            {
                return; // the forwarding handler answers 400 before anything is written
            }
            head.Append(name).Append(": ").Append(trimmed).Append("\r\n");
        }
        var marker = $"{blocks.MarkerName}: {nonce}\r\n";
        var beforeMarker = head.ToString();
        head.Append(marker).Append("Content-Length: ").Append(body.Length).Append("\r\n\r\n");

        var input = Concat(Encoding.Latin1.GetBytes(head.ToString()), body);
        var output = Write(input, chunk, blocks, out var refused);
        Check(refused is null, "the filter refused a head the gateway built: " + refused?.Message);
        var expected = Concat(Encoding.Latin1.GetBytes(beforeMarker), identity,
            Encoding.Latin1.GetBytes($"Content-Length: {body.Length}\r\n\r\n"), body);
        Check(output.AsSpan().SequenceEqual(expected), "the wire differs from the head with the identity lines in place of the marker");
    }

    private static void Raw(ReadOnlySpan<byte> data, int chunk)
    {
        var blocks = new IdentityBlocks();
        var output = Write(data.ToArray(), chunk, blocks, out var refused);
        // Without a nonce in flight no head can pass: at most a prefix still waiting for its terminator is held back.
        Check(output.Length == 0, "the filter wrote bytes of a request the gateway did not build");
        _ = refused;
    }

    private static byte[] Write(byte[] input, int chunk, IdentityBlocks blocks, out UpstreamHeaderException? refused)
    {
        refused = null;
        using var sink = new MemoryStream();
        using (var filter = new UpstreamHeaderFilter(new NonClosing(sink), blocks, forUpgrade: false))
        {
            try
            {
                for (var i = 0; i < input.Length; i += chunk)
                {
                    filter.Write(input, i, Math.Min(chunk, input.Length - i));
                }
            }
            catch (UpstreamHeaderException ex)
            {
                refused = ex;
            }
        }
        return sink.ToArray();
    }

    private static bool Valid(UserInfo user) =>
        user.Name.Length > 0 && FieldValues.IsIdentityValue(user.Name) && FieldValues.IsIdentityValue(user.Uid)
        && user.Groups.All(FieldValues.IsIdentityValue)
        && user.Extra.All(e => e.Key.StartsWith("authentication.kubernetes.io/", StringComparison.Ordinal)
            || (e.Key.Length > 0 && FieldValues.IsIdentityValue(e.Key) && e.Value.All(FieldValues.IsIdentityValue)));

    private static void CheckIdentityLines(byte[] identity, UserInfo user, string mode)
    {
        var prefix = mode == UpstreamIdentityModes.Impersonate ? "Impersonate-" : "X-Remote-";
        var text = Encoding.UTF8.GetString(identity);
        Check(text.Length == 0 || text.EndsWith("\r\n", StringComparison.Ordinal), "the identity block does not end a line");
        var lines = text.Length == 0 ? [] : text[..^2].Split("\r\n");
        foreach (var line in lines)
        {
            Check(line.StartsWith(prefix, StringComparison.Ordinal), "an identity line outside the identity headers");
            Check(!line.Any(char.IsControl), "an identity line with a control character");
        }
        var expectedGroups = user.Groups.Count(g => g.Length > 0 && g != UserInfo.AuthenticatedGroup);
        var expectedExtra = user.Extra.Where(e => !e.Key.StartsWith("authentication.kubernetes.io/", StringComparison.Ordinal)).Sum(e => e.Value.Count(v => v.Length > 0));
        var expected = 1 + expectedGroups + (user.Uid.Length > 0 ? 1 : 0) + expectedExtra;
        Check(lines.Length == expected, $"{lines.Length} identity lines for {expected} values");
        Check(lines[0] == prefix + "User: " + user.Name, "the first identity line is not the user");
    }

    private static List<byte[]> Split(ReadOnlySpan<byte> data, byte separator)
    {
        var parts = new List<byte[]>();
        while (true)
        {
            var at = data.IndexOf(separator);
            if (at < 0)
            {
                parts.Add(data.ToArray());
                return parts;
            }
            parts.Add(data[..at].ToArray());
            data = data[(at + 1)..];
        }
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new InvariantException(message);
        }
    }

    private sealed class NonClosing(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            inner.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>An invariant of the header writer does not hold for a fuzz input.</summary>
public sealed class InvariantException(string message) : Exception(message);
