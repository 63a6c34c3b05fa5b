using System.CommandLine;
using System.Text.Json;
using Portcullis.Authorization;
using Portcullis.Authorization.Rbac;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis who-can --config FILE VERB RESOURCE [-n NS] [NAME]</c>: every subject the configuration's RBAC policy
/// lets do it, with the binding and role that grant it (the blast radius of a credential or a role).
/// </summary>
internal static class WhoCanCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The GatewayConfiguration file", Required = true };
        var ns = new Option<string?>("--namespace", "-n") { Description = "Namespace (RoleBindings there count too)" };
        var path = new Option<string?>("--path") { Description = "A non-resource path such as /metrics (then RESOURCE is omitted)" };
        var subresource = new Option<string?>("--subresource") { Description = "Subresource (or write RESOURCE as pods/log)" };
        var apiGroup = new Option<string?>("--api-group") { Description = "API group (or write RESOURCE as deployments.apps)" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var verb = new Argument<string>("VERB");
        var resource = new Argument<string?>("RESOURCE") { Arity = ArgumentArity.ZeroOrOne };
        var name = new Argument<string?>("NAME") { Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("who-can", "List the subjects that may do something, with the bindings that grant it.")
        {
            config, ns, path, subresource, apiGroup, json, verb, resource, name,
        };
        command.SetAction(parse =>
        {
            using var chain = ExplainCommand.LoadChain(parse.GetValue(config)!.FullName, includeWebhook: false);
            if (chain is null)
            {
                return 2;
            }
            var request = ExplainCommand.BuildRequest(parse.GetValue(verb)!, parse.GetValue(resource), parse.GetValue(name), parse.GetValue(ns),
                parse.GetValue(path), parse.GetValue(subresource), parse.GetValue(apiGroup));
            if (request is null)
            {
                return 2;
            }
            var matches = chain.Rbac?.Policy.WhoCan(request) ?? [];
            var notes = Notes(chain);
            if (parse.GetValue(json))
            {
                using var stdout = Console.OpenStandardOutput();
                using var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                w.WriteStartObject();
                w.WriteStartArray("subjects");
                foreach (var m in matches)
                {
                    w.WriteStartObject();
                    w.WriteString("kind", m.Subject.Kind);
                    w.WriteString("name", m.Subject.Name);
                    if (m.Subject.Kind == "ServiceAccount")
                    {
                        w.WriteString("namespace", m.Subject.Namespace.Length > 0 ? m.Subject.Namespace : m.Binding.Namespace);
                    }
                    w.WriteString("binding", Binding(m));
                    w.WriteString("role", $"{m.Binding.RoleRefKind}/{m.Binding.RoleRefName}");
                    w.WriteString("rule", m.Rule.ToString());
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("notes");
                foreach (var n in notes)
                {
                    w.WriteStringValue(n);
                }
                w.WriteEndArray();
                w.WriteEndObject();
                w.Flush();
                Console.Out.WriteLine();
                return 0;
            }
            var rows = matches.Select(m => (Subject: m.Subject.Kind == "ServiceAccount" ? $"ServiceAccount {(m.Subject.Namespace.Length > 0 ? m.Subject.Namespace : m.Binding.Namespace)}/{m.Subject.Name}" : $"{m.Subject.Kind} {m.Subject.Name}",
                Binding: Binding(m), Role: $"{m.Binding.RoleRefKind}/{m.Binding.RoleRefName}")).ToList();
            var w1 = Math.Max("SUBJECT".Length, rows.Count == 0 ? 0 : rows.Max(r => r.Subject.Length));
            var w2 = Math.Max("BINDING".Length, rows.Count == 0 ? 0 : rows.Max(r => r.Binding.Length));
            Console.Out.WriteLine($"{"SUBJECT".PadRight(w1)}  {"BINDING".PadRight(w2)}  ROLE");
            foreach (var r in rows)
            {
                Console.Out.WriteLine($"{r.Subject.PadRight(w1)}  {r.Binding.PadRight(w2)}  {r.Role}");
            }
            foreach (var n in notes)
            {
                Console.Out.WriteLine("note: " + n);
            }
            return 0;
        });
        return command;
    }

    private static string Binding(RbacGrantMatch m) =>
        m.Binding.IsClusterRoleBinding ? $"ClusterRoleBinding/{m.Binding.Name}" : $"RoleBinding/{m.Binding.Namespace}/{m.Binding.Name}";

    private static List<string> Notes(AuthorizerChain chain)
    {
        var notes = new List<string> { "members of group system:masters may do anything (the system:masters authorizer runs before the modes)" };
        if (chain.Authorizers.Any(a => a is AlwaysAllowAuthorizer))
        {
            notes.Add("authorization.modes contains AlwaysAllow: every authenticated request that reaches it is allowed");
        }
        if (chain.Authorizers.Any(a => a.Name == "Webhook") || chain.Webhook is not null)
        {
            notes.Add("the Webhook mode is not consulted by who-can");
        }
        if (chain.DenyList is { } deny && deny.List.Entries.Count > 0)
        {
            notes.Add($"the deny list ({deny.List.Entries.Count} entries) removes matching identities, credentials and networks first");
        }
        if (chain.NetworkScopes is { } scopes)
        {
            foreach (var s in scopes.Scopes)
            {
                notes.Add("network scope " + s.Description);
            }
        }
        return notes;
    }
}
