using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Portcullis.Sandbox.Storage;

namespace Portcullis.Sandbox.Api.Protobuf;

/// <summary>
/// Reads a request body in the Kubernetes protobuf envelope ("k8s\0" then a runtime.Unknown with the
/// TypeMeta and the raw object) into JSON. kubectl's typed clients (create configmap, create secret, …)
/// send this and do not fall back to JSON; only the fields in <see cref="ProtoSchemas"/> survive.
/// </summary>
internal static class ProtobufDecoder
{
    private static readonly byte[] Magic = [0x6b, 0x38, 0x73, 0x00];

    public static JsonObject Decode(ReadOnlySpan<byte> body)
    {
        if (!body.StartsWith(Magic))
        {
            throw ApiException.BadRequest("protobuf body without the Kubernetes \"k8s\\0\" prefix");
        }
        var reader = new WireReader(body[Magic.Length..].ToArray());
        string apiVersion = "", kind = "";
        byte[]? raw = null;
        while (reader.TryReadTag(out var number, out var wireType))
        {
            switch (number, wireType)
            {
                case (1, 2):
                    var typeMeta = new WireReader(reader.ReadBytes());
                    while (typeMeta.TryReadTag(out var n, out var w))
                    {
                        if (n == 1 && w == 2)
                        {
                            apiVersion = Encoding.UTF8.GetString(typeMeta.ReadBytes());
                        }
                        else if (n == 2 && w == 2)
                        {
                            kind = Encoding.UTF8.GetString(typeMeta.ReadBytes());
                        }
                        else
                        {
                            typeMeta.Skip(w);
                        }
                    }
                    break;
                case (2, 2):
                    raw = reader.ReadBytes();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }
        if (!ProtoSchemas.ByKind.TryGetValue(apiVersion + "/" + kind, out var schema) || raw is null)
        {
            throw new ApiException(System.Net.HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType",
                $"the sandbox cannot read {apiVersion} {kind} as protobuf; send application/json");
        }
        var obj = ReadMessage(new WireReader(raw), schema);
        obj["apiVersion"] = apiVersion;
        obj["kind"] = kind;
        return obj;
    }

    private static JsonObject ReadMessage(WireReader reader, ProtoMessage schema)
    {
        var obj = new JsonObject();
        while (reader.TryReadTag(out var number, out var wireType))
        {
            var field = schema.Field(number);
            if (field is null)
            {
                reader.Skip(wireType);
                continue;
            }
            JsonNode? value;
            switch (field.Kind)
            {
                case ProtoKind.MapString:
                case ProtoKind.MapBytes:
                    var (key, entry) = ReadMapEntry(new WireReader(reader.ReadBytes()), field.Kind == ProtoKind.MapBytes);
                    var map = obj[field.Name] as JsonObject ?? [];
                    map[key] = entry;
                    obj[field.Name] = map;
                    continue;
                case ProtoKind.String:
                    value = Encoding.UTF8.GetString(reader.ReadBytes());
                    break;
                case ProtoKind.Bytes:
                    value = Convert.ToBase64String(reader.ReadBytes());
                    break;
                case ProtoKind.Int:
                    value = (long)reader.ReadVarint();
                    break;
                case ProtoKind.Bool:
                    value = reader.ReadVarint() != 0;
                    break;
                case ProtoKind.Time:
                    value = ReadTime(new WireReader(reader.ReadBytes()));
                    break;
                case ProtoKind.Message:
                    value = ReadMessage(new WireReader(reader.ReadBytes()), field.Message!);
                    break;
                default:
                    reader.Skip(wireType);
                    continue;
            }
            if (field.Repeated)
            {
                var array = obj[field.Name] as JsonArray ?? [];
                array.Add(value);
                obj[field.Name] = array;
            }
            else if (!IsZero(value))
            {
                // gogo-protobuf writes every non-pointer field; zero values mean "unset" in JSON (omitempty).
                obj[field.Name] = value;
            }
        }
        return obj;
    }

    private static bool IsZero(JsonNode? value) => value switch
    {
        null => true,
        JsonObject o => o.Count == 0,
        JsonValue v when v.TryGetValue<string>(out var s) => s.Length == 0,
        JsonValue v when v.TryGetValue<long>(out var l) => l == 0,
        JsonValue v when v.TryGetValue<bool>(out var b) => !b,
        _ => false,
    };

    private static (string Key, string Value) ReadMapEntry(WireReader reader, bool bytes)
    {
        string key = "", value = "";
        while (reader.TryReadTag(out var number, out var wireType))
        {
            if (number == 1 && wireType == 2)
            {
                key = Encoding.UTF8.GetString(reader.ReadBytes());
            }
            else if (number == 2 && wireType == 2)
            {
                var data = reader.ReadBytes();
                value = bytes ? Convert.ToBase64String(data) : Encoding.UTF8.GetString(data);
            }
            else
            {
                reader.Skip(wireType);
            }
        }
        return (key, value);
    }

    private static string ReadTime(WireReader reader)
    {
        long seconds = 0, nanos = 0;
        while (reader.TryReadTag(out var number, out var wireType))
        {
            if (number == 1 && wireType == 0)
            {
                seconds = (long)reader.ReadVarint();
            }
            else if (number == 2 && wireType == 0)
            {
                nanos = (long)reader.ReadVarint();
            }
            else
            {
                reader.Skip(wireType);
            }
        }
        return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanos / 100).UtcDateTime
            .ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
    }

    /// <summary>A forward-only reader of the protobuf wire format.</summary>
    private sealed class WireReader(byte[] data)
    {
        private int _position;

        public bool TryReadTag(out int number, out int wireType)
        {
            if (_position >= data.Length)
            {
                number = 0;
                wireType = 0;
                return false;
            }
            var tag = ReadVarint();
            number = (int)(tag >> 3);
            wireType = (int)(tag & 7);
            return true;
        }

        public ulong ReadVarint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_position >= data.Length)
                {
                    throw ApiException.BadRequest("truncated protobuf body");
                }
                var b = data[_position++];
                result |= (ulong)(b & 0x7f) << shift;
                if ((b & 0x80) == 0)
                {
                    return result;
                }
            }
            throw ApiException.BadRequest("malformed protobuf varint");
        }

        public byte[] ReadBytes()
        {
            var length = ReadVarint();
            if (length > (ulong)(data.Length - _position))
            {
                throw ApiException.BadRequest("truncated protobuf body");
            }
            var result = data.AsSpan(_position, (int)length).ToArray();
            _position += (int)length;
            return result;
        }

        public void Skip(int wireType)
        {
            switch (wireType)
            {
                case 0:
                    ReadVarint();
                    break;
                case 1:
                    _position += 8;
                    break;
                case 2:
                    ReadBytes();
                    break;
                case 5:
                    _position += 4;
                    break;
                default:
                    throw ApiException.BadRequest($"unsupported protobuf wire type {wireType}");
            }
            if (_position > data.Length)
            {
                throw ApiException.BadRequest("truncated protobuf body");
            }
        }
    }
}
