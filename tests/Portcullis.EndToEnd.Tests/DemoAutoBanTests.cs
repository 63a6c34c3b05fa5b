using Portcullis.EndToEnd.Tests.Infrastructure;

namespace Portcullis.EndToEnd.Tests;

/// <summary>
/// The demo's auto-ban line, run exactly as the banner prints it (in bash, with <c>portcullis</c> on PATH), against a
/// demo of its own: 127.0.0.2 ends up banned while 127.0.0.1 is still served.
/// </summary>
public sealed class DemoAutoBanTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task The_banners_auto_ban_command_bans_127_0_0_2_and_127_0_0_1_keeps_working()
    {
        var bash = ExternalTool.Find("bash");
        var curl = ExternalTool.Find("curl");
        Assert.True(bash is not null && curl is not null, "bash and curl must be on PATH for this test");
        await using var demo = await DemoProcess.StartAsync();
        var command = await BannerCommandAsync(demo, "--interface 127.0.0.2");
        var bin = Directory.CreateTempSubdirectory("portcullis-e2e-bin-").FullName;
        try
        {
            // `portcullis` as a user has it: the built CLI behind a one-line wrapper on PATH.
            var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
            var wrapper = Path.Combine(bin, "portcullis");
            await File.WriteAllTextAsync(wrapper, $"#!/bin/sh\nexec \"{dotnet}\" \"{DemoProcess.CliPath}\" \"$@\"\n");
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var run = await ExternalTool.RunAsync(bash!, ["-c", command],
                environment: new Dictionary<string, string> { ["PATH"] = bin + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH"), ["NO_COLOR"] = "1" },
                timeout: Timeout);

            Assert.True(run.ExitCode == 0, run + "\n" + demo.Output);
            var row = run.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith("127.0.0.2 ", StringComparison.Ordinal));
            Assert.True(row is not null, run.ToString());
            Assert.Contains(" authentication ", row, StringComparison.Ordinal);
            Assert.DoesNotContain("127.0.0.1 ", run.Stdout, StringComparison.Ordinal);

            Assert.Equal("000", (await CurlAsync(curl!, demo, "127.0.0.2")).Stdout); // closed at accept
            var served = await CurlAsync(curl!, demo, "127.0.0.1");
            Assert.True(served.ExitCode == 0 && served.Stdout == "200", served.ToString());
        }
        finally
        {
            Directory.Delete(bin, recursive: true);
        }
    }

    /// <summary>The command of the banner line containing <paramref name="marker"/>, without its trailing comment.</summary>
    private static async Task<string> BannerCommandAsync(DemoProcess demo, string marker)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var line = demo.Output.Split('\n').FirstOrDefault(l => l.Contains(marker, StringComparison.Ordinal));
            if (line is not null)
            {
                var comment = line.IndexOf("   #", StringComparison.Ordinal);
                return (comment < 0 ? line : line[..comment]).Trim();
            }
            Assert.True(DateTime.UtcNow < deadline, $"no banner line with {marker}:\n{demo.Output}");
            await Task.Delay(50); // a poll interval with a deadline
        }
    }

    /// <summary>jane (group developers) lists pods in dev, from <paramref name="source"/>, with curl; prints the HTTP code.</summary>
    private static Task<CliResult> CurlAsync(string curl, DemoProcess demo, string source) =>
        ExternalTool.RunAsync(curl, ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "--interface", source,
            "--cacert", demo.Pki("ca.crt"), "--cert", demo.Pki("jane.crt"), "--key", demo.Pki("jane.key"),
            new Uri(demo.Gateway, "/api/v1/namespaces/dev/pods").ToString()], timeout: Timeout);
}
