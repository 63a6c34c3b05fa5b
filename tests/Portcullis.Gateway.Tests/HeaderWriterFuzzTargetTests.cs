using System.Text;
using CsCheck;
using Portcullis.Fuzz;

namespace Portcullis.Gateway.Tests;

/// <summary>
/// Issue 13, deliver 8: the SharpFuzz target over the header writer (fuzz/Portcullis.Fuzz) runs in ./test.sh over its
/// seed corpus and over a fixed number of seeded mutations, so an invariant it checks cannot silently rot. A real
/// fuzzing campaign is described in docs/threat-model.md.
/// </summary>
public sealed class HeaderWriterFuzzTargetTests
{
    private const int Mutations = 20_000;
    private const ulong Seed = 20261205;

    private static byte[][] Corpus() =>
        [.. Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fuzz-corpus")).Order(StringComparer.Ordinal).Select(File.ReadAllBytes)];

    [Fact]
    public void The_seed_corpus_holds_every_invariant()
    {
        var corpus = Corpus();
        Assert.True(corpus.Length >= 8, $"only {corpus.Length} corpus files were copied");
        foreach (var input in corpus)
        {
            HeaderWriterTarget.Run(input);
        }
    }

    // Pieces an attacker would try: line breaks, the gateway's own names, encodings, controls, separators.
    private static readonly byte[][] Tokens =
    [
        "\r\n"u8.ToArray(), "\n"u8.ToArray(), "\r"u8.ToArray(), [0], [0x7F], [0x0B], "\t"u8.ToArray(), " "u8.ToArray(),
        "%0D%0A"u8.ToArray(), "X-Portcullis-"u8.ToArray(), "Impersonate-User: admin"u8.ToArray(), "system:masters"u8.ToArray(),
        "Content-Length: 5"u8.ToArray(), "Transfer-Encoding: chunked"u8.ToArray(), "\r\n\r\nGET / HTTP/1.1\r\n"u8.ToArray(),
        [0xFF], [0xFE], [0xC3, 0xA9], [0xED, 0xA0, 0x80], "\u0085"u8.ToArray(), "base64url.bearer.authorization.k8s.io.x"u8.ToArray(),
    ];

    [Fact]
    public void Seeded_mutations_of_the_corpus_hold_every_invariant()
    {
        var corpus = Corpus();
        var pcg = new PCG(1, Seed);
        for (var i = 0; i < Mutations; i++)
        {
            var input = Mutate(corpus[(int)pcg.Next((uint)corpus.Length)], pcg);
            try
            {
                HeaderWriterTarget.Run(input);
            }
            catch (Exception ex)
            {
                Assert.Fail($"mutation {i} ({Convert.ToHexString(input)}): {ex.GetType().Name}: {ex.Message}");
            }
        }
    }

    private static byte[] Mutate(byte[] input, PCG pcg)
    {
        var bytes = new List<byte>(input);
        var edits = 1 + (int)pcg.Next(6);
        for (var e = 0; e < edits; e++)
        {
            var at = bytes.Count == 0 ? 0 : (int)pcg.Next((uint)bytes.Count);
            switch (pcg.Next(4))
            {
                case 0 when bytes.Count > 0:
                    bytes[at] = (byte)pcg.Next(256);
                    break;
                case 1:
                    bytes.InsertRange(at, Tokens[pcg.Next((uint)Tokens.Length)]);
                    break;
                case 2 when bytes.Count > 0:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + (int)pcg.Next(8)));
                    break;
                default:
                    bytes.InsertRange(at, Encoding.ASCII.GetBytes(((char)('a' + pcg.Next(26))).ToString()));
                    break;
            }
        }
        return [.. bytes];
    }
}
