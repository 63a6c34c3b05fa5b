using System.CommandLine;
using System.Net;
using Portcullis.Admission.Flowcontrol;
using Portcullis.Authentication;
using Portcullis.Authorization;
using Portcullis.Authorization.Explain;
using Portcullis.Gateway.Snapshots;

namespace Portcullis.Cli;

/// <summary>
/// <c>portcullis explain --config FILE --user U [--group G…] [--source-ip IP] VERB RESOURCE [-n NS] [NAME]</c> (or
/// <c>--path /metrics</c>): runs the authorization chain of the configuration for one request and prints which layer
/// decided and why, and where API Priority and Fairness puts it (flow schema, priority level, distinguisher). Exit 0 allowed, 1 denied, 2 bad configuration or arguments, 3 authorization error (the gateway's 500).
/// </summary>
internal static class ExplainCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The GatewayConfiguration file (only its authorization and admission.priorityAndFairness sections are needed)", Required = true };
        var user = new Option<string>("--user", "-u") { Description = "User name to authorize", Required = true };
        var groups = new Option<string[]>("--group", "-g") { Description = "A group of the user (repeatable); system:authenticated is added unless --no-authenticated-group", AllowMultipleArgumentsPerToken = false };
        var noAuthGroup = new Option<bool>("--no-authenticated-group") { Description = "Do not add system:authenticated (as for system:anonymous)" };
        var sourceIp = new Option<string?>("--source-ip") { Description = "Client address (for network scopes and sourceCIDR deny-list entries)" };
        var tokenSha = new Option<string?>("--token-sha256") { Description = "SHA-256 (hex) of the bearer token, for tokenSHA256 deny-list entries" };
        var serial = new Option<string?>("--certificate-serial") { Description = "Client certificate serial (hex), for certificateSerial deny-list entries" };
        var ns = new Option<string?>("--namespace", "-n") { Description = "Namespace of the request" };
        var path = new Option<string?>("--path") { Description = "A non-resource path such as /metrics (then RESOURCE is omitted)" };
        var subresource = new Option<string?>("--subresource") { Description = "Subresource, e.g. log, exec, scale (or write RESOURCE as pods/log)" };
        var apiGroup = new Option<string?>("--api-group") { Description = "API group (or write RESOURCE as deployments.apps)" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var noWebhook = new Option<bool>("--no-webhook") { Description = "Leave out the Webhook mode (offline)" };
        var verb = new Argument<string>("VERB") { Description = "get, list, watch, create, update, patch, delete, deletecollection, impersonate, …" };
        var resource = new Argument<string?>("RESOURCE") { Description = "pods, deployments.apps, pods/log, …", Arity = ArgumentArity.ZeroOrOne };
        var name = new Argument<string?>("NAME") { Description = "Object name", Arity = ArgumentArity.ZeroOrOne };

        var command = new Command("explain", "Explain why a user would be allowed or denied a request: deny list, network scope, or binding → role → rule; and the FlowSchema and priority level API Priority and Fairness puts it in.")
        {
            config, user, groups, noAuthGroup, sourceIp, tokenSha, serial, ns, path, subresource, apiGroup, json, noWebhook, verb, resource, name,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var configPath = parse.GetValue(config)!.FullName;
            var (chain, flowcontrol, _, errors) = GatewayConfigurationPipeline.LoadExplain(configPath, !parse.GetValue(noWebhook));
            if (chain is null)
            {
                ServeCommand.ReportErrors(configPath, errors);
                return 2;
            }
            using (chain)
            {
                var request = BuildRequest(parse.GetValue(verb)!, parse.GetValue(resource), parse.GetValue(name), parse.GetValue(ns),
                    parse.GetValue(path), parse.GetValue(subresource), parse.GetValue(apiGroup));
                if (request is null)
                {
                    return 2;
                }
                IPAddress? ip = null;
                var ipText = parse.GetValue(sourceIp);
                if (ipText is not null && !IPAddress.TryParse(ipText, out ip))
                {
                    Console.Error.WriteLine($"--source-ip: \"{ipText}\" is not an IP address");
                    return 2;
                }
                var userInfo = UserInfo.Create(parse.GetValue(user)!, parse.GetValue(groups) ?? []);
                if (!parse.GetValue(noAuthGroup))
                {
                    userInfo = userInfo.WithAuthenticatedGroup();
                }
                var attributes = new AuthorizationAttributes(userInfo, request, ip, parse.GetValue(tokenSha)?.ToLowerInvariant(), parse.GetValue(serial));
                var explanation = await AuthorizationExplainer.ExplainAsync(chain, attributes, cancellationToken) with
                {
                    PriorityAndFairness = FlowcontrolExplanation.Explain(flowcontrol, userInfo, request),
                };
                Console.Out.Write(parse.GetValue(json) ? explanation.ToJson() + Environment.NewLine : explanation.ToText());
                return explanation.Result.IsInternalError ? 3 : explanation.Allowed ? 0 : 1;
            }
        });
        return command;
    }

    /// <summary>
    /// Loads the configuration as serve does (<see cref="GatewayConfigurationPipeline.LoadAuthorization"/>) and builds its
    /// authorization chain; prints the errors as serve and validate print them and returns null on failure.
    /// </summary>
    internal static AuthorizerChain? LoadChain(string configPath, bool includeWebhook)
    {
        var (chain, errors) = GatewayConfigurationPipeline.LoadAuthorization(configPath, includeWebhook);
        if (chain is null)
        {
            ServeCommand.ReportErrors(configPath, errors);
        }
        return chain;
    }

    /// <summary>A RequestInfo from kubectl-style arguments; prints the problem and returns null when they do not fit.</summary>
    internal static RequestInfo? BuildRequest(string verb, string? resource, string? name, string? ns, string? path, string? subresource, string? apiGroup)
    {
        if (path is not null)
        {
            if (resource is not null)
            {
                Console.Error.WriteLine("give either --path or RESOURCE, not both");
                return null;
            }
            if (!path.StartsWith('/'))
            {
                Console.Error.WriteLine($"--path: \"{path}\" must start with /");
                return null;
            }
            return RequestInfoParser.NonResource(verb, path);
        }
        if (string.IsNullOrEmpty(resource))
        {
            Console.Error.WriteLine("RESOURCE is required (or --path for a non-resource URL)");
            return null;
        }
        var sub = subresource ?? "";
        var slash = resource.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            sub = resource[(slash + 1)..];
            resource = resource[..slash];
        }
        var group = apiGroup ?? "";
        var dot = resource.IndexOf('.', StringComparison.Ordinal);
        if (apiGroup is null && dot >= 0)
        {
            group = resource[(dot + 1)..];
            resource = resource[..dot];
        }
        return RequestInfoParser.Resource(verb, group, resource, sub, ns ?? "", name ?? "");
    }
}
