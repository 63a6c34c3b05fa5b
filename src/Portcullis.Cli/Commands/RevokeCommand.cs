using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Portcullis.Configuration;
using Portcullis.Tls;
using YamlDotNet.RepresentationModel;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis revoke --cert FILE --reason TEXT [--file revoked.yaml | --config portcullis.yaml] [--by serial|sha256|subject]
/// [--expires TIME]</c>: appends an entry for the certificate to a <c>kind: RevocationList</c> (the one named by the
/// configuration's <c>tls.revocationFile</c>, or the file given), creating it when missing and keeping every comment and
/// entry already there. The result is checked to load before it replaces the file (write and rename, so a running
/// gateway reloads it whole). Exit 0 when written, 1 when the existing file cannot take the entry, 2 on a usage error.
/// </summary>
internal static class RevokeCommand
{
    public static Command Create()
    {
        var cert = new Option<FileInfo>("--cert") { Description = "The certificate to revoke (PEM or DER)", Required = true };
        var reason = new Option<string>("--reason") { Description = "Why (logged with every refused handshake)", Required = true };
        var file = new Option<FileInfo?>("--file", "-f") { Description = "The RevocationList file to append to (created when missing)" };
        var config = new Option<FileInfo?>("--config", "-c") { Description = "A GatewayConfiguration: append to its tls.revocationFile" };
        var by = new Option<string>("--by")
        {
            Description = "serial (with the issuer's name, the default), sha256 (this exact certificate) or subject (every certificate with its subject)",
            DefaultValueFactory = _ => "serial",
        };
        by.AcceptOnlyFromAmong("serial", "sha256", "subject");
        var expires = new Option<string?>("--expires") { Description = "When the entry lapses: an RFC 3339 time (2026-12-31T00:00:00Z) or a duration from now (720h)" };
        var command = new Command("revoke", "Append a client certificate to a RevocationList (tls.revocationFile): refused at the TLS handshake, its open connections closed at the reload.")
        {
            cert, reason, file, config, by, expires,
        };
        command.SetAction(parse =>
        {
            var fileValue = parse.GetValue(file);
            var configValue = parse.GetValue(config);
            if ((fileValue is null) == (configValue is null))
            {
                return Usage("give exactly one of --file and --config");
            }
            var reasonText = parse.GetValue(reason)!;
            if (reasonText.Trim().Length == 0)
            {
                return Usage("--reason: say why the certificate is revoked");
            }
            DateTimeOffset? until = null;
            if (parse.GetValue(expires) is { } e)
            {
                if (DateTimeOffset.TryParse(e, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                {
                    until = at.ToUniversalTime();
                }
                else if (GoDuration.TryParse(e, out var d) && d > TimeSpan.Zero)
                {
                    until = DateTimeOffset.UtcNow.Add(d);
                }
                else
                {
                    return Usage($"--expires: \"{e}\" is neither an RFC 3339 time (2026-12-31T00:00:00Z) nor a duration (720h)");
                }
            }
            X509Certificate2 certificate;
            var certPath = parse.GetValue(cert)!.FullName;
            try
            {
                certificate = LoadCertificate(certPath);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or FormatException)
            {
                return Usage($"--cert: cannot read a certificate from {certPath}: {ex.Message}");
            }
            string target;
            if (fileValue is not null)
            {
                target = fileValue.FullName;
            }
            else
            {
                var errors = new List<ConfigError>();
                var gateway = ConfigurationLoader.Read(configValue!.FullName, errors);
                if (gateway?.Tls is not { RevocationFile.Length: > 0 } tls)
                {
                    ServeCommand.ReportErrors(configValue.FullName, gateway is null ? errors : [new ConfigError(configValue.FullName, 0, "tls.revocationFile", "is not set: name the RevocationList file there, or use --file")]);
                    return 2;
                }
                target = gateway.Resolve(tls.RevocationFile);
            }
            using (certificate)
            {
                return Append(target, Entry(certificate, parse.GetValue(by)!, reasonText, until), certificate);
            }
        });
        return command;
    }

    private static int Usage(string message)
    {
        Console.Error.WriteLine($"portcullis: {message}");
        Console.Error.WriteLine("Run 'portcullis revoke --help' for usage.");
        return 2;
    }

    private static X509Certificate2 LoadCertificate(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (Encoding.ASCII.GetString(bytes).Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
        {
            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(path);
            return all.Count > 0 ? all[0] : throw new FormatException("no PEM certificate in it");
        }
        return X509CertificateLoader.LoadCertificate(bytes);
    }

    /// <summary>The entry's YAML lines, each value a double-quoted scalar (JSON string syntax, which YAML reads as is).</summary>
    internal static List<string> Entry(X509Certificate2 certificate, string by, string reason, DateTimeOffset? expires)
    {
        static string Q(string s) => JsonSerializer.Serialize(s);
        var lines = new List<string>();
        switch (by)
        {
            case "sha256":
                lines.Add($"- sha256: {Q(Convert.ToHexStringLower(SHA256.HashData(certificate.RawData)))}");
                break;
            case "subject":
                lines.Add($"- subject: {Q(certificate.Subject)}");
                break;
            default:
                lines.Add($"- serial: {Q(CertificateSerials.FromBytes(certificate.SerialNumberBytes.Span))}");
                lines.Add($"  issuer: {Q(certificate.Issuer)}");
                break;
        }
        lines.Add($"  reason: {Q(reason)}");
        if (expires is { } x)
        {
            lines.Add($"  expires: {x.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}");
        }
        lines.Add($"  # added by portcullis revoke {DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}: {certificate.Subject.ReplaceLineEndings(" ")}");
        return lines;
    }

    private static int Append(string target, List<string> entry, X509Certificate2 certificate)
    {
        string text;
        try
        {
            text = File.Exists(target) ? File.ReadAllText(target) : "";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"portcullis: {target}: {ex.Message}");
            return 1;
        }
        var updated = text.Trim().Length == 0
            ? $"apiVersion: {GatewayConfiguration.ApiVersionValue}\nkind: {RevocationList.KindValue}\ncertificates:\n{string.Join('\n', entry)}\n"
            : Insert(text, entry);
        if (updated is null)
        {
            Console.Error.WriteLine($"portcullis: {target}: cannot find where to add the entry: 'certificates' must be a block list (- serial: …) or absent");
            return 1;
        }
        // The result must load (CRL files are not re-verified here: the gateway does that at reload).
        var errors = new List<ConfigError>();
        RevocationList.Parse(updated, target, null, errors);
        var real = errors.Where(e => !e.Field.StartsWith("crlFiles", StringComparison.Ordinal)).ToList();
        if (real.Count > 0)
        {
            ServeCommand.ReportErrors(target, real);
            return 1;
        }
        try
        {
            var directory = Path.GetDirectoryName(target)!;
            Directory.CreateDirectory(directory);
            var temporary = Path.Combine(directory, $".{Path.GetFileName(target)}.{Environment.ProcessId}.tmp");
            File.WriteAllText(temporary, updated);
            File.Move(temporary, target, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"portcullis: {target}: {ex.Message}");
            return 1;
        }
        Console.Out.WriteLine($"revoked {certificate.Subject} (serial {CertificateSerials.FromBytes(certificate.SerialNumberBytes.Span)}, issuer {certificate.Issuer}) in {target}");
        return 0;
    }

    /// <summary>
    /// The text with the entry added to the <c>certificates</c> block list (after its last item), or a new
    /// <c>certificates</c> key at the end when there is none (or it is empty); null when it is a non-empty flow list.
    /// </summary>
    internal static string? Insert(string text, List<string> entry)
    {
        var lines = text.ReplaceLineEndings("\n").Split('\n').ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }
        YamlMappingNode? root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            root = stream.Documents.Count == 1 ? stream.Documents[0].RootNode as YamlMappingNode : null;
        }
        catch (YamlDotNet.Core.YamlException)
        {
            return null;
        }
        if (root is null)
        {
            return null;
        }
        var key = root.Children.Keys.OfType<YamlScalarNode>().FirstOrDefault(k => k.Value == "certificates");
        if (key is null)
        {
            lines.Add("certificates:");
            lines.AddRange(entry);
            return string.Join('\n', lines) + "\n";
        }
        var value = root.Children[key];
        var keyLine = (int)key.Start.Line - 1;
        var indent = new string(' ', (int)key.Start.Column - 1);
        if (value is YamlSequenceNode { Children.Count: > 0 } sequence)
        {
            if (sequence.Style == YamlDotNet.Core.Events.SequenceStyle.Flow)
            {
                return null;
            }
            var last = sequence.Children[^1];
            var dash = (int)sequence.Start.Column - 1;
            var at = (int)last.Start.Line; // the line after the last item's first line (0-based index)
            while (at < lines.Count)
            {
                var line = lines[at];
                var trimmed = line.TrimStart();
                if (trimmed.Length == 0 || trimmed.StartsWith('#') || line.Length - trimmed.Length > dash)
                {
                    at++;
                    continue;
                }
                break;
            }
            // Trailing blank lines and comments stay after the new entry.
            while (at > (int)last.Start.Line && (lines[at - 1].Trim().Length == 0 || lines[at - 1].TrimStart().StartsWith('#')))
            {
                at--;
            }
            var pad = new string(' ', dash);
            lines.InsertRange(at, entry.Select(l => pad + l));
            return string.Join('\n', lines) + "\n";
        }
        if (value is YamlSequenceNode or YamlScalarNode { Value: null or "" or "~" or "null" })
        {
            // certificates: [] or an empty key: the key's line becomes a block list.
            lines[keyLine] = indent + "certificates:";
            lines.InsertRange(keyLine + 1, entry.Select(l => indent + l));
            return string.Join('\n', lines) + "\n";
        }
        return null;
    }
}
