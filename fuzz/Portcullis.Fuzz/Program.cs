using Portcullis.Fuzz;
using SharpFuzz;

// The SharpFuzz entry point for the header writer (docs/threat-model.md, "Fuzzing"):
//   afl-fuzz -i fuzz/Portcullis.Fuzz/corpus -o findings -- dotnet Portcullis.Fuzz.dll          (AFL++, out of process)
//   Portcullis.Fuzz --libfuzzer                                                              (under libfuzzer-dotnet)
//   Portcullis.Fuzz --run FILE...                                                            (replay inputs, no fuzzer)
if (args.Length > 0 && args[0] == "--run")
{
    foreach (var file in args.Skip(1))
    {
        HeaderWriterTarget.Run(File.ReadAllBytes(file));
        Console.WriteLine($"ok {file}");
    }
    return;
}
if (args.Length > 0 && args[0] == "--libfuzzer")
{
    Fuzzer.LibFuzzer.Run(span => HeaderWriterTarget.Run(span));
    return;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    HeaderWriterTarget.Run(buffer.ToArray());
});
