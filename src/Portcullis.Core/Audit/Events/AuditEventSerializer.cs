using System.Text;
using System.Text.Json;
using Portcullis.Authentication;
using Portcullis.Http;

namespace Portcullis.Audit;

/// <summary>Writes <see cref="AuditEvent"/> as kube-apiserver's JSON: same field names, order, omissions and escaping.</summary>
public static class AuditEventSerializer
{
    /// <summary>kube-apiserver's user-agent limit; longer values are cut and suffixed with <see cref="TruncatedSuffix"/>.</summary>
    public const int MaxUserAgentLength = 1024;
    public const string TruncatedSuffix = "...TRUNCATED";

    [ThreadStatic]
    private static GoJsonWriter? t_writer;

    public static string TruncateUserAgent(string? userAgent) =>
        userAgent is null ? "" : userAgent.Length > MaxUserAgentLength ? string.Concat(userAgent.AsSpan(0, MaxUserAgentLength), TruncatedSuffix) : userAgent;

    /// <summary>The event as UTF-8 JSON (one line, no trailing newline), serialized anew on every call.</summary>
    public static byte[] Serialize(AuditEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return Serialize(e, newline: false);
    }

    /// <summary>The event as UTF-8 JSON followed by a newline, in one exact-size array (<see cref="AuditEvent"/> keeps it).</summary>
    internal static byte[] SerializeLine(AuditEvent e) => Serialize(e, newline: true);

    private static byte[] Serialize(AuditEvent e, bool newline)
    {
        var w = t_writer ??= new GoJsonWriter(4096);
        w.Clear();
        Write(w, e);
        if (newline)
        {
            w.Raw((byte)'\n');
        }
        var result = w.ToArray();
        if (w.Length > 1 << 20)
        {
            // Do not keep a huge buffer per thread after one large event.
            w.Dispose();
            t_writer = null;
        }
        return result;
    }

    /// <summary>The event as a JSON string (tests, diagnostics).</summary>
    public static string SerializeToString(AuditEvent e) => Encoding.UTF8.GetString(Serialize(e));

    /// <summary>
    /// Writes the webhook body <c>{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[...]}</c>.
    /// </summary>
    public static byte[] SerializeEventList(IReadOnlyList<AuditEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var head = "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":["u8;
        var total = head.Length + 2 + Math.Max(0, events.Count - 1);
        for (var i = 0; i < events.Count; i++)
        {
            total += events[i].Json.Length;
        }
        var result = new byte[total];
        head.CopyTo(result);
        var at = head.Length;
        for (var i = 0; i < events.Count; i++)
        {
            if (i > 0)
            {
                result[at++] = (byte)',';
            }
            var json = events[i].Json.Span;
            json.CopyTo(result.AsSpan(at));
            at += json.Length;
        }
        result[at++] = (byte)']';
        result[at] = (byte)'}';
        return result;
    }

    internal static void Write(GoJsonWriter w, AuditEvent e)
    {
        w.Raw("{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":"u8);
        w.String(e.Level.Name());
        w.Raw(",\"auditID\":"u8);
        w.String(e.AuditId);
        w.Raw(",\"stage\":"u8);
        w.String(e.Stage.Name());
        w.Raw(",\"requestURI\":"u8);
        w.String(e.RequestUri);
        w.Raw(",\"verb\":"u8);
        w.String(e.Verb);
        w.Raw(",\"user\":"u8);
        WriteUser(w, e.User);
        if (e.ImpersonatedUser is not null)
        {
            w.Raw(",\"impersonatedUser\":"u8);
            WriteUser(w, e.ImpersonatedUser);
        }
        if (e.SourceIps.Count > 0)
        {
            w.Raw(",\"sourceIPs\":"u8);
            WriteStrings(w, e.SourceIps);
        }
        if (e.UserAgent.Length > 0)
        {
            w.Raw(",\"userAgent\":"u8);
            w.String(e.UserAgent);
        }
        if (e.ObjectRef is { } o)
        {
            w.Raw(",\"objectRef\":{"u8);
            var first = true;
            Member(w, "\"resource\":"u8, o.Resource, ref first);
            Member(w, "\"namespace\":"u8, o.Namespace, ref first);
            Member(w, "\"name\":"u8, o.Name, ref first);
            Member(w, "\"uid\":"u8, o.Uid, ref first);
            Member(w, "\"apiGroup\":"u8, o.ApiGroup, ref first);
            Member(w, "\"apiVersion\":"u8, o.ApiVersion, ref first);
            Member(w, "\"resourceVersion\":"u8, o.ResourceVersion, ref first);
            Member(w, "\"subresource\":"u8, o.Subresource, ref first);
            w.Raw((byte)'}');
        }
        if (e.ResponseStatus is { } s)
        {
            w.Raw(",\"responseStatus\":{\"metadata\":{}"u8);
            var first = false;
            Member(w, "\"status\":"u8, s.Status, ref first);
            Member(w, "\"message\":"u8, s.Message, ref first);
            Member(w, "\"reason\":"u8, s.Reason, ref first);
            if (s.Details is { } d)
            {
                w.Raw(",\"details\":{"u8);
                var firstDetail = true;
                Member(w, "\"name\":"u8, d.Name, ref firstDetail);
                Member(w, "\"group\":"u8, d.Group, ref firstDetail);
                Member(w, "\"kind\":"u8, d.Kind, ref firstDetail);
                if (d.RetryAfterSeconds != 0)
                {
                    if (!firstDetail)
                    {
                        w.Raw((byte)',');
                    }
                    w.Raw("\"retryAfterSeconds\":"u8);
                    w.Int(d.RetryAfterSeconds);
                }
                w.Raw((byte)'}');
            }
            if (s.Code != 0)
            {
                w.Raw(",\"code\":"u8);
                w.Int(s.Code);
            }
            w.Raw((byte)'}');
        }
        if (!e.RequestObject.IsEmpty)
        {
            w.Raw(",\"requestObject\":"u8);
            w.Raw(e.RequestObject.Span);
        }
        if (!e.ResponseObject.IsEmpty)
        {
            w.Raw(",\"responseObject\":"u8);
            w.Raw(e.ResponseObject.Span);
        }
        w.Raw(",\"requestReceivedTimestamp\":"u8);
        w.MicroTime(e.RequestReceivedTimestamp);
        w.Raw(",\"stageTimestamp\":"u8);
        w.MicroTime(e.StageTimestamp);
        if (e.Annotations.Count > 0)
        {
            w.Raw(",\"annotations\":{"u8);
            for (var i = 0; i < e.Annotations.Count; i++)
            {
                if (i > 0)
                {
                    w.Raw((byte)',');
                }
                w.String(e.Annotations[i].Key);
                w.Raw((byte)':');
                w.String(e.Annotations[i].Value);
            }
            w.Raw((byte)'}');
        }
        w.Raw((byte)'}');
    }

    private static void WriteUser(GoJsonWriter w, UserInfo? user)
    {
        w.Raw((byte)'{');
        if (user is not null)
        {
            var first = true;
            Member(w, "\"username\":"u8, user.Name, ref first);
            Member(w, "\"uid\":"u8, user.Uid, ref first);
            if (user.Groups.Count > 0)
            {
                if (!first)
                {
                    w.Raw((byte)',');
                }
                first = false;
                w.Raw("\"groups\":"u8);
                WriteStrings(w, user.Groups);
            }
            if (user.Extra.Count > 0)
            {
                if (!first)
                {
                    w.Raw((byte)',');
                }
                w.Raw("\"extra\":{"u8);
                var keys = new string[user.Extra.Count];
                var k = 0;
                foreach (var key in user.Extra.Keys)
                {
                    keys[k++] = key;
                }
                Array.Sort(keys, StringComparer.Ordinal);
                for (var i = 0; i < keys.Length; i++)
                {
                    if (i > 0)
                    {
                        w.Raw((byte)',');
                    }
                    w.String(keys[i]);
                    w.Raw((byte)':');
                    var values = user.Extra[keys[i]];
                    if (values.Count == 0)
                    {
                        w.Raw("null"u8);
                    }
                    else
                    {
                        WriteStrings(w, values);
                    }
                }
                w.Raw((byte)'}');
            }
        }
        w.Raw((byte)'}');
    }

    private static void WriteStrings(GoJsonWriter w, IReadOnlyList<string> values)
    {
        w.Raw((byte)'[');
        for (var i = 0; i < values.Count; i++)
        {
            if (i > 0)
            {
                w.Raw((byte)',');
            }
            w.String(values[i]);
        }
        w.Raw((byte)']');
    }

    private static void Member(GoJsonWriter w, ReadOnlySpan<byte> name, string value, ref bool first)
    {
        if (value.Length == 0)
        {
            return;
        }
        if (!first)
        {
            w.Raw((byte)',');
        }
        first = false;
        w.Raw(name);
        w.String(value);
    }

    /// <summary>
    /// The deepest nesting of objects and arrays kube-apiserver's JSON decoder accepts (Go's <c>encoding/json</c> scanner,
    /// <c>maxNestingDepth</c>, which <c>sigs.k8s.io/json</c> inherits). System.Text.Json's default of 64 would leave a body
    /// nested 65 levels deep out of the event although kube-apiserver decodes (and records) it.
    /// </summary>
    public const int MaxJsonDepth = 10000;

    internal static readonly JsonReaderOptions ReaderOptions = new() { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = MaxJsonDepth };

    /// <summary>
    /// Checks that <paramref name="json"/> is one complete JSON object and returns it as kube-apiserver records it:
    /// compact (every whitespace byte outside strings removed, so padding cannot inflate or hide it), invalid UTF-8
    /// replaced by U+FFFD byte by byte as Go's decoder does, and, when <paramref name="omitManagedFields"/>, without
    /// <c>metadata.managedFields</c> (of the object and of each <c>items[]</c> of a list). Strings and numbers are kept as
    /// sent. Returns empty when the body is not one JSON object (for example protobuf, or invalid JSON).
    /// </summary>
    public static ReadOnlyMemory<byte> PrepareObject(ReadOnlyMemory<byte> json, bool omitManagedFields)
    {
        json = ReplaceInvalidUtf8(json);
        var span = json.Span;
        var first = 0;
        while (first < span.Length && IsJsonWhitespace(span[first]))
        {
            first++;
        }
        if (first >= span.Length || span[first] != (byte)'{')
        {
            return ReadOnlyMemory<byte>.Empty;
        }
        List<(int Start, int End)>? cuts = null;
        try
        {
            var reader = new Utf8JsonReader(span, ReaderOptions);
            // Path tracking just deep enough for metadata.managedFields and items[].metadata.managedFields.
            Span<int> kinds = stackalloc int[8]; // 1 = root object, 2 = metadata, 3 = items array, 4 = item object, 0 = other
            var depth = 0;
            var pendingProperty = 0; // 1 metadata, 2 items
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        var parent = depth > 0 && depth <= kinds.Length ? kinds[depth - 1] : 0;
                        pendingProperty = 0;
                        if (parent is 1 or 4 && reader.ValueTextEquals("metadata"u8))
                        {
                            pendingProperty = 1;
                        }
                        else if (parent == 1 && reader.ValueTextEquals("items"u8))
                        {
                            pendingProperty = 2;
                        }
                        else if (parent == 2 && omitManagedFields && reader.ValueTextEquals("managedFields"u8))
                        {
                            var start = (int)reader.TokenStartIndex;
                            reader.Read();
                            reader.Skip();
                            (cuts ??= []).Add(WithOneComma(span, start, (int)reader.BytesConsumed));
                        }
                        break;
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        var parentKind = depth > 0 && depth <= kinds.Length ? kinds[depth - 1] : -1;
                        var kind = 0;
                        if (depth == 0)
                        {
                            kind = 1;
                        }
                        else if (reader.TokenType == JsonTokenType.StartObject && pendingProperty == 1 && parentKind is 1 or 4)
                        {
                            kind = 2;
                        }
                        else if (reader.TokenType == JsonTokenType.StartArray && pendingProperty == 2 && parentKind == 1)
                        {
                            kind = 3;
                        }
                        else if (reader.TokenType == JsonTokenType.StartObject && parentKind == 3)
                        {
                            kind = 4;
                        }
                        if (depth < kinds.Length)
                        {
                            kinds[depth] = kind;
                        }
                        depth++;
                        pendingProperty = 0;
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        depth--;
                        pendingProperty = 0;
                        break;
                    default:
                        pendingProperty = 0;
                        break;
                }
            }
            if (depth != 0)
            {
                return ReadOnlyMemory<byte>.Empty;
            }
        }
        catch (JsonException)
        {
            return ReadOnlyMemory<byte>.Empty;
        }
        return Compact(json, cuts);
    }

    // A cut property takes one adjoining comma with it so the object stays valid.
    private static (int Start, int End) WithOneComma(ReadOnlySpan<byte> span, int start, int end)
    {
        var before = start - 1;
        while (before >= 0 && IsJsonWhitespace(span[before]))
        {
            before--;
        }
        if (before >= 0 && span[before] == (byte)',')
        {
            return (before, end);
        }
        var after = end;
        while (after < span.Length && IsJsonWhitespace(span[after]))
        {
            after++;
        }
        return after < span.Length && span[after] == (byte)',' ? (start, after + 1) : (start, end);
    }

    private static bool IsJsonWhitespace(byte b) => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t';

    // Copies valid JSON without its insignificant whitespace and without the cut ranges (which start and end outside
    // strings). Inside a string every byte is kept; a backslash always escapes the byte after it.
    private static ReadOnlyMemory<byte> Compact(ReadOnlyMemory<byte> json, List<(int Start, int End)>? cuts)
    {
        var span = json.Span;
        if (cuts is null && span.IndexOfAny(" \n\r\t"u8) < 0)
        {
            return json;
        }
        var result = new byte[span.Length];
        var n = 0;
        var inString = false;
        var cut = 0;
        for (var i = 0; i < span.Length; i++)
        {
            if (cuts is not null)
            {
                while (cut < cuts.Count && cuts[cut].End <= i)
                {
                    cut++;
                }
                if (cut < cuts.Count && i >= cuts[cut].Start)
                {
                    i = cuts[cut].End - 1;
                    cut++;
                    continue;
                }
            }
            var b = span[i];
            if (inString)
            {
                result[n++] = b;
                if (b == (byte)'\\' && i + 1 < span.Length)
                {
                    result[n++] = span[++i];
                }
                else if (b == (byte)'"')
                {
                    inString = false;
                }
            }
            else if (!IsJsonWhitespace(b))
            {
                result[n++] = b;
                inString = b == (byte)'"';
            }
        }
        return result.AsMemory(0, n);
    }

    /// <summary>
    /// <paramref name="bytes"/> with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD, as Go's
    /// JSON decoder does when kube-apiserver reads a body (one replacement per invalid byte). Valid input is returned
    /// as is, without a copy.
    /// </summary>
    public static ReadOnlyMemory<byte> ReplaceInvalidUtf8(ReadOnlyMemory<byte> bytes)
    {
        var span = bytes.Span;
        if (System.Text.Unicode.Utf8.IsValid(span))
        {
            return bytes;
        }
        var result = new List<byte>(span.Length + 16);
        var i = 0;
        while (i < span.Length)
        {
            if (span[i] < 0x80)
            {
                result.Add(span[i++]);
                continue;
            }
            if (Rune.DecodeFromUtf8(span[i..], out _, out var consumed) == System.Buffers.OperationStatus.Done)
            {
                for (var k = 0; k < consumed; k++)
                {
                    result.Add(span[i + k]);
                }
                i += consumed;
            }
            else
            {
                result.Add(0xEF);
                result.Add(0xBF);
                result.Add(0xBD);
                i++;
            }
        }
        return result.ToArray();
    }
}
