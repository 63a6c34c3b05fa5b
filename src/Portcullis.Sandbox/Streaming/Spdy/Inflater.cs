namespace Portcullis.Sandbox.Streaming.Spdy;

/// <summary>
/// A small DEFLATE (RFC 1951) decoder for SPDY header blocks: one zlib stream per connection direction,
/// primed with the SPDY dictionary, each frame's block ending on a sync flush. .NET's ZLibStream cannot
/// take a preset dictionary, hence this. Speed does not matter here: header blocks are a few hundred bytes.
/// </summary>
internal sealed class Inflater
{
    private static readonly int[] LengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
    private static readonly int[] LengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
    private static readonly int[] DistanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
    private static readonly int[] DistanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
    private static readonly int[] CodeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

    private static readonly Huffman FixedLiterals = BuildFixedLiterals();
    private static readonly Huffman FixedDistances = new([.. Enumerable.Repeat(5, 30)]);

    private readonly byte[] _dictionary;
    private readonly List<byte> _history = [];
    private bool _headerRead;
    private byte[] _input = [];
    private int _position;
    private int _bitBuffer;
    private int _bitCount;

    public Inflater(byte[] dictionary)
    {
        _dictionary = dictionary;
        _history.AddRange(dictionary);
    }

    /// <summary>Decodes one frame's worth of compressed bytes and returns what they expand to.</summary>
    public byte[] Inflate(ReadOnlySpan<byte> compressed)
    {
        _input = compressed.ToArray();
        _position = 0;
        _bitBuffer = 0;
        _bitCount = 0;
        var start = _history.Count;
        if (!_headerRead)
        {
            ReadZlibHeader();
            _headerRead = true;
        }
        while (_position < _input.Length)
        {
            var final = Bits(1);
            var type = Bits(2);
            switch (type)
            {
                case 0:
                    Stored();
                    break;
                case 1:
                    Codes(FixedLiterals, FixedDistances);
                    break;
                case 2:
                    Dynamic();
                    break;
                default:
                    throw new InvalidDataException("invalid deflate block type 3");
            }
            if (final == 1)
            {
                break;
            }
        }
        var output = _history.GetRange(start, _history.Count - start).ToArray();
        // Back-references reach at most 32 KiB; keep the history bounded.
        if (_history.Count > 64 * 1024)
        {
            _history.RemoveRange(0, _history.Count - 32 * 1024);
        }
        return output;
    }

    private void ReadZlibHeader()
    {
        var cmf = NextByte();
        var flg = NextByte();
        if ((cmf & 0x0f) != 8 || ((cmf << 8) | flg) % 31 != 0)
        {
            throw new InvalidDataException("not a zlib stream");
        }
        if ((flg & 0x20) != 0)
        {
            var id = (uint)(NextByte() << 24 | NextByte() << 16 | NextByte() << 8 | NextByte());
            var expected = Adler32(_dictionary);
            if (id != expected)
            {
                throw new InvalidDataException($"zlib dictionary id {id:x8} is not the SPDY/3 dictionary's {expected:x8}");
            }
        }
    }

    private byte NextByte()
    {
        if (_position >= _input.Length)
        {
            throw new InvalidDataException("compressed header block ends early");
        }
        return _input[_position++];
    }

    private int Bits(int count)
    {
        var value = _bitBuffer;
        while (_bitCount < count)
        {
            value |= NextByte() << _bitCount;
            _bitCount += 8;
        }
        _bitBuffer = value >> count;
        _bitCount -= count;
        return value & ((1 << count) - 1);
    }

    private void Stored()
    {
        _bitBuffer = 0;
        _bitCount = 0;
        var length = NextByte() | NextByte() << 8;
        var complement = NextByte() | NextByte() << 8;
        if (length != (~complement & 0xffff))
        {
            throw new InvalidDataException("stored block length check failed");
        }
        for (var i = 0; i < length; i++)
        {
            _history.Add(NextByte());
        }
    }

    private void Codes(Huffman literals, Huffman distances)
    {
        while (true)
        {
            var symbol = Decode(literals);
            if (symbol < 256)
            {
                _history.Add((byte)symbol);
                continue;
            }
            if (symbol == 256)
            {
                return;
            }
            symbol -= 257;
            if (symbol >= LengthBase.Length)
            {
                throw new InvalidDataException("invalid deflate length symbol");
            }
            var length = LengthBase[symbol] + Bits(LengthExtra[symbol]);
            var distanceSymbol = Decode(distances);
            if (distanceSymbol >= DistanceBase.Length)
            {
                throw new InvalidDataException("invalid deflate distance symbol");
            }
            var distance = DistanceBase[distanceSymbol] + Bits(DistanceExtra[distanceSymbol]);
            if (distance > _history.Count)
            {
                throw new InvalidDataException("deflate distance reaches before the dictionary");
            }
            var from = _history.Count - distance;
            for (var i = 0; i < length; i++)
            {
                _history.Add(_history[from + i]);
            }
        }
    }

    private void Dynamic()
    {
        var literalCount = Bits(5) + 257;
        var distanceCount = Bits(5) + 1;
        var codeLengthCount = Bits(4) + 4;
        var codeLengths = new int[19];
        for (var i = 0; i < codeLengthCount; i++)
        {
            codeLengths[CodeLengthOrder[i]] = Bits(3);
        }
        var codeLengthCode = new Huffman(codeLengths);
        var lengths = new int[literalCount + distanceCount];
        for (var i = 0; i < lengths.Length;)
        {
            var symbol = Decode(codeLengthCode);
            if (symbol < 16)
            {
                lengths[i++] = symbol;
                continue;
            }
            var (value, repeat) = symbol switch
            {
                16 when i > 0 => (lengths[i - 1], 3 + Bits(2)),
                17 => (0, 3 + Bits(3)),
                18 => (0, 11 + Bits(7)),
                _ => throw new InvalidDataException("invalid code length repeat"),
            };
            if (i + repeat > lengths.Length)
            {
                throw new InvalidDataException("code lengths overrun");
            }
            for (var r = 0; r < repeat; r++)
            {
                lengths[i++] = value;
            }
        }
        Codes(new Huffman(lengths[..literalCount]), new Huffman(lengths[literalCount..]));
    }

    // Canonical Huffman decoding one bit at a time: codes of each length are consecutive integers.
    private int Decode(Huffman huffman)
    {
        int code = 0, first = 0, index = 0;
        for (var length = 1; length <= 15; length++)
        {
            code |= Bits(1);
            var count = huffman.Counts[length];
            if (code - count < first)
            {
                return huffman.Symbols[index + (code - first)];
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        throw new InvalidDataException("invalid Huffman code");
    }

    private static Huffman BuildFixedLiterals()
    {
        var lengths = new int[288];
        for (var i = 0; i < 288; i++)
        {
            lengths[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
        }
        return new Huffman(lengths);
    }

    public static uint Adler32(ReadOnlySpan<byte> data)
    {
        uint a = 1, b = 0;
        foreach (var value in data)
        {
            a = (a + value) % 65521;
            b = (b + a) % 65521;
        }
        return (b << 16) | a;
    }

    private sealed class Huffman
    {
        public Huffman(int[] lengths)
        {
            Counts = new int[16];
            foreach (var length in lengths)
            {
                Counts[length]++;
            }
            Counts[0] = 0;
            var offsets = new int[16];
            for (var length = 1; length < 15; length++)
            {
                offsets[length + 1] = offsets[length] + Counts[length];
            }
            Symbols = new int[lengths.Length];
            for (var symbol = 0; symbol < lengths.Length; symbol++)
            {
                if (lengths[symbol] != 0)
                {
                    Symbols[offsets[lengths[symbol]]++] = symbol;
                }
            }
        }

        public int[] Counts { get; }

        public int[] Symbols { get; }
    }
}
