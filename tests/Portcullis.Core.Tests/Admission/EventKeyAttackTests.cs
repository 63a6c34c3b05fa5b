using System.Diagnostics;
using System.Text;
using CsCheck;
using Portcullis.Admission.RateLimiting;

namespace Portcullis.Core.Tests.Admission;

/// <summary>
/// The SourceAndObject key readers against hostile bodies (JSON, YAML, Kubernetes protobuf): never an exception, bounded
/// time, the empty key for anything that does not decode as an Event.
/// </summary>
public sealed class EventKeyAttackTests
{
    private const string Protobuf = "application/vnd.kubernetes.protobuf";
    private const string Yaml = "application/yaml";
    private const string Json = "application/json";

    // A generous bound for a loaded machine: the readers take microseconds; a quadratic or exponential path takes minutes.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static string Key(byte[] body, string contentType)
    {
        var watch = Stopwatch.StartNew();
        var key = EventRateLimiter.SourceAndObjectKey(body, contentType);
        Assert.True(watch.Elapsed < Bound, $"{contentType}: {body.Length} bytes took {watch.Elapsed}");
        return key;
    }

    private static byte[] Varint(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return [.. bytes];
    }

    private static byte[] Field(int number, byte[] value) => [.. Varint((ulong)(number << 3 | 2)), .. Varint((ulong)value.Length), .. value];

    private static byte[] Str(int number, string value) => Field(number, Encoding.UTF8.GetBytes(value));

    private static byte[] ProtobufEvent(byte[] involvedObject, byte[] source) =>
        [.. "k8s\0"u8, .. Field(2, [.. Field(2, involvedObject), .. Field(5, source)])];

    private static readonly byte[] GoodProtobuf = ProtobufEvent(
        [.. Str(1, "Pod"), .. Str(2, "default"), .. Str(3, "web"), .. Str(4, "u1"), .. Str(5, "v1")],
        [.. Str(1, "kubelet"), .. Str(2, "node-1")]);

    [Fact]
    public void A_well_formed_protobuf_event_gives_its_key()
    {
        Assert.Equal("kubeletnode-1Poddefaultwebu1v1", Key(GoodProtobuf, Protobuf));
    }

    public static TheoryData<string, byte[]> BadProtobuf() => new()
    {
        { "magic only", [.. "k8s\0"u8] },
        { "magic and garbage", [.. "k8s\0"u8, 0xFF, 0xFE, 0x00, 0x13, 0x37] },
        { "truncated varint", [.. "k8s\0"u8, 0x12, 0x80] },
        { "overlong varint (11 bytes)", [.. "k8s\0"u8, 0x12, .. Enumerable.Repeat((byte)0xFF, 10), 0x01] },
        { "length past the end", [.. "k8s\0"u8, 0x12, 0x7F, 0x01] },
        { "huge length (2^63)", [.. "k8s\0"u8, 0x12, .. Varint(1UL << 63)] },
        { "negative length (-1 as Go writes int64)", [.. "k8s\0"u8, 0x12, .. Varint(ulong.MaxValue)] },
        { "length int.MaxValue + 1", [.. "k8s\0"u8, 0x12, .. Varint((ulong)int.MaxValue + 1)] },
        { "field number 0", [.. "k8s\0"u8, 0x02, 0x00] },
        { "wire type 3 (group)", [.. "k8s\0"u8, 0x13] },
        { "inner length past the end", [.. "k8s\0"u8, .. Field(2, [0x12, 0x7F])] },
        { "non-UTF-8 component", ProtobufEvent([], [.. Field(1, [0xC3, 0x28, 0xFF])]) },
        { "fixed64 past the end", [.. "k8s\0"u8, 0x09, 0x01, 0x02] },
        { "no magic", [.. GoodProtobuf.AsSpan(4)] },
    };

    [Theory]
    [MemberData(nameof(BadProtobuf))]
    public void A_malformed_protobuf_body_gives_the_empty_key(string name, byte[] body)
    {
        Assert.True(Key(body, Protobuf) == "", name);
    }

    [Fact]
    public void Deep_json_nesting_gives_the_empty_key()
    {
        var body = Encoding.ASCII.GetBytes(new string('[', 1_000_000) + new string(']', 1_000_000));
        Assert.Equal("", Key(body, Json));
        var nested = Encoding.ASCII.GetBytes("{\"source\":" + string.Concat(Enumerable.Repeat("{\"a\":", 200_000)) + "1" + new string('}', 200_001));
        Assert.Equal("", Key(nested, Json));
    }

    public static TheoryData<string, string> DeepYaml() => new()
    {
        { "flow sequences", new string('[', 1_000_000) + new string(']', 1_000_000) },
        { "flow mappings", string.Concat(Enumerable.Repeat("{a: ", 300_000)) + "b" + new string('}', 300_000) },
        { "block sequences", string.Concat(Enumerable.Repeat("- ", 500_000)) + "x\n" },
        { "under source", "source:\n  component: " + new string('[', 1_000_000) + "\n" },
    };

    // YamlDotNet's representation model builds nested nodes recursively: a deep enough document overflows the stack,
    // which ends the process (a StackOverflowException cannot be caught).
    [Theory]
    [MemberData(nameof(DeepYaml))]
    public void Deep_yaml_nesting_gives_the_empty_key_without_overflowing_the_stack(string name, string yaml)
    {
        Assert.True(Key(Encoding.UTF8.GetBytes(yaml), Yaml) == "", name);
    }

    // Aliases give the empty key: a body with aliases (a "billion laughs") is not expanded, nor hashed as a mapping key.
    [Fact]
    public void A_yaml_alias_bomb_is_bounded()
    {
        var b = new StringBuilder("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (var i = 1; i < 30; i++)
        {
            b.Append($"a{i}: &a{i} [");
            b.AppendJoin(", ", Enumerable.Repeat($"*a{i - 1}", 10));
            b.Append("]\n");
        }
        b.Append("source: {component: kubelet, host: n1}\n");
        b.Append("involvedObject: {kind: Pod}\n");
        Assert.Equal("", Key(Encoding.UTF8.GetBytes(b.ToString()), Yaml));

        // The same bomb as a mapping key: a dictionary of YAML nodes hashes (and compares) a complex key whole.
        b.Append("? *a29\n: boom\n");
        b.Append("? [*a29]\n: boom\n");
        Assert.Equal("", Key(Encoding.UTF8.GetBytes(b.ToString()), Yaml));
    }

    public static TheoryData<string, string> OddYaml() => new()
    {
        { "undefined alias", "source: *nowhere\n" },
        { "duplicate key", "source: {component: a}\nsource: {component: b}\n" },
        { "two documents", "source: {component: a}\n---\nsource: {component: b}\n" },
        { "tab indentation", "source:\n\tcomponent: a\n" },
        { "self-referencing anchor", "a: &a [*a]\n" },
        { "a sequence", "- a\n- b\n" },
        { "a scalar", "hello\n" },
        { "empty", "" },
        { "unterminated quote", "source: {component: \"abc\n" },
        { "tag", "source: !!binary AAAA\n" },
        { "control characters", "source: {component: \"\u0001\u0000\"}\n" },
    };

    [Theory]
    [MemberData(nameof(OddYaml))]
    public void Odd_yaml_never_throws(string name, string yaml)
    {
        Assert.NotNull(name);
        Key(Encoding.UTF8.GetBytes(yaml), Yaml);
    }

    [Fact]
    public void Non_utf8_strings_never_throw()
    {
        byte[] json = [.. "{\"source\":{\"component\":\""u8, 0xC3, 0x28, 0xFF, .. "\"}}"u8];
        byte[] yaml = [.. "source: {component: "u8, 0xC3, 0x28, 0xFF, .. "}\n"u8];
        Assert.Equal("", Key(json, Json));
        Key(yaml, Yaml);
    }

    [Fact]
    public void A_body_near_the_request_limit_is_read_in_bounded_time()
    {
        // limits.maxRequestBodyBytes defaults to 3 MiB: the worst shapes of that size.
        const int size = 3 << 20;
        Assert.Equal("", Key([.. "k8s\0"u8, .. Field(2, [.. Enumerable.Repeat((byte)0x08, size / 2).SelectMany(b => new[] { b, (byte)0x01 })])], Protobuf));
        Assert.Equal("", Key([.. "k8s\0"u8, .. Enumerable.Repeat((byte)0x12, size).Select((b, i) => i % 2 == 0 ? b : (byte)0x00)], Protobuf));
        Key(Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("a: b\n", size / 5))), Yaml);
        Key(Encoding.ASCII.GetBytes("{" + string.Join(",", Enumerable.Range(0, size / 12).Select(i => $"\"k{i}\":1")) + "}"), Json);
    }

    // Any bytes, any of the three media types, and mutations of a well-formed event: a string, never an exception.
    [Fact]
    public void Any_body_gives_a_key_and_never_throws()
    {
        var mediaType = Gen.Int[0, 4].Select(i => new[] { Protobuf, Yaml, Json, "application/vnd.kubernetes.protobuf; charset=x", null }[i]);
        var seeds = new[]
        {
            GoodProtobuf,
            "{\"source\":{\"component\":\"kubelet\",\"host\":\"n1\"},\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"web\"}}"u8.ToArray(),
            "source:\n  component: kubelet\n  host: n1\ninvolvedObject: &o\n  kind: Pod\n  name: web\nx: *o\n"u8.ToArray(),
            "source: {component: kubelet, host: n1}\ninvolvedObject:\n  kind: Pod\n  name: 'web'\n"u8.ToArray(),
        };
        var mutated = Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int[0, 1000], Gen.Byte.Array[1, 8], Gen.Int[0, 3])
            .Select((s, at, insert, drop) =>
            {
                var seed = seeds[s];
                var i = at % (seed.Length + 1);
                return (byte[])[.. seed.AsSpan(0, i), .. insert, .. seed.AsSpan(Math.Min(seed.Length, i + drop))];
            });
        var random = Gen.OneOf(Gen.Byte.Array[0, 200], Gen.Byte.Array[0, 200].Select(b => (byte[])[.. "k8s\0"u8, .. b]));
        Gen.Select(Gen.OneOf(mutated, random), mediaType).Sample((body, type) =>
        {
            Assert.NotNull(EventRateLimiter.SourceAndObjectKey(body, type));
        }, iter: 20_000);
    }
}
