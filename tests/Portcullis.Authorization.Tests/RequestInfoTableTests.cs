using Portcullis.Authorization;

namespace Portcullis.Authorization.Tests;

/// <summary>
/// The RequestInfo table (spec §1 and bad-inputs §2). Each explicit row: <c>METHOD TARGET => EXPECTED</c> where
/// EXPECTED is <c>400</c>/<c>500</c> or <c>r|n verb group ns resource subresource name</c> with <c>-</c> for empty.
/// Generated rows cross resource paths with every method through spec §1's method→verb table.
/// </summary>
public class RequestInfoTableTests
{
    private const string Explicit = """
        GET /healthz => n get - - - - -
        GET /version => n get - - - - -
        GET /api => n get - - - - -
        GET /apis => n get - - - - -
        GET /api/v1 => n get - - - - -
        GET /apis/apps => n get - - - - -
        GET /apis/apps/v1 => n get - - - - -
        GET / => n get - - - - -
        OPTIONS /healthz => n options - - - - -
        HEAD /healthz => n head - - - - -
        POST /healthz => n post - - - - -
        GET /metrics => n get - - - - -
        GET /openapi/v3 => n get - - - - -
        GET /.well-known/openid-configuration => n get - - - - -
        GET /openid/v1/jwks => n get - - - - -
        GET /debug/pprof/profile => n get - - - - -
        GET /healthz/etcd => n get - - - - -
        GET /api/v1/pods => r list - - pods - -
        GET /api/v1/namespaces => r list - - namespaces - -
        GET /api/v1/namespaces/ns1 => r get - ns1 namespaces - ns1
        PUT /api/v1/namespaces/ns1/finalize => r update - ns1 namespaces finalize ns1
        PUT /api/v1/namespaces/ns1/status => r update - ns1 namespaces status ns1
        GET /api/v1/namespaces/ns1/pods?watch=1 => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=true => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch= => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=yes => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=0 => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=false => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=FALSE => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=true;x=1 => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=f => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=F => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=True => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=f&limit=abc => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=yes&limit=500 => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?w%61tch=1 => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=0&watch=1 => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=%zz&watch=1 => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?limit=abc&fieldSelector=metadata.name%3Dp1 => r list - ns1 pods - -
        GET /api/v1/watch/namespaces/ns1/pods?fieldSelector=metadata.name%3Dp1 => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Da%3Db => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%20%3D%20p1 => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Dp2,metadata.name%3Dp1 => r list - ns1 pods - p1
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Dp%5C%5C1 => r list - ns1 pods - p\1
        HEAD /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Dp1 => r list - ns1 pods - p1
        GET /api/v1/namespaces/ns1/pods?watch=%zz => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?limit=500&watch=true => r watch - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods/p1?watch=true => r get - ns1 pods - p1
        GET /api/v1/watch/namespaces/ns1/pods => r watch - ns1 pods - -
        GET /api/v1/watch/namespaces/ns1/pods/p1 => r watch - ns1 pods - p1
        GET /api/v1/watch/pods => r watch - - pods - -
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Dp1 => r list - ns1 pods - p1
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3D%3Dp1 => r list - ns1 pods - p1
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%21%3Dp1 => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3D.. => r list - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods?watch=1&fieldSelector=metadata.name%3Dp1 => r watch - ns1 pods - p1
        GET /api/v1/namespaces/ns1/pods?fieldSelector=status.phase%3DRunning,metadata.name%3Dp2 => r list - ns1 pods - p2
        DELETE /api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Dp1 => r deletecollection - ns1 pods - -
        GET /api/v1/namespaces/ns1/pods/p1/log => r get - ns1 pods log p1
        POST /api/v1/namespaces/ns1/pods/p1/exec => r create - ns1 pods exec p1
        GET /api/v1/namespaces/ns1/pods/p1/exec => r get - ns1 pods exec p1
        POST /api/v1/namespaces/ns1/pods/p1/attach => r create - ns1 pods attach p1
        POST /api/v1/namespaces/ns1/pods/p1/portforward => r create - ns1 pods portforward p1
        PATCH /api/v1/namespaces/ns1/pods/p1/ephemeralcontainers => r patch - ns1 pods ephemeralcontainers p1
        GET /api/v1/namespaces/ns1/pods/p1/proxy/a/b => r get - ns1 pods proxy p1
        GET /api/v1/namespaces/ns1/services/s1:80/proxy/a/b => r get - ns1 services proxy s1:80
        GET /api/v1/proxy/namespaces/ns1/services/s1/a => r proxy - ns1 services - s1
        GET /api/v1/proxy/nodes/n1/stats => r proxy - - nodes - n1
        GET /api/v1/nodes/n1/proxy/metrics => r get - - nodes proxy n1
        DELETE /apis/apps/v1/namespaces/ns1/deployments => r deletecollection apps ns1 deployments - -
        PATCH /apis/apps/v1/namespaces/ns1/deployments/d1/scale => r patch apps ns1 deployments scale d1
        OPTIONS /api/v1/pods => r "" - - pods - -
        TRACE /api/v1/pods => r "" - - pods - -
        GET /api/v1/watch => 500
        GET /api/v1/proxy => 500
        GET /apis/apps/v1/watch => 500
        GET /api/v1/namespaces/x/../kube-system/secrets => 400
        GET /api/v1/./secrets => 400
        GET /api/v1/pods/. => 400
        GET /api/v1/pods/.. => 400
        GET /.. => 400
        GET /api/v1/namespaces/ns1/pods/.a => r get - ns1 pods - .a
        GET /api/v1/namespaces/ns1/pods/..a => r get - ns1 pods - ..a
        GET /api/v1/namespaces/ns1/pods/a.. => r get - ns1 pods - a..
        GET /api/v1/namespaces/ns1/pods/a%2E%2E => r get - ns1 pods - a..
        GET /api/v1/namespaces/ns1/pods/web-1%3F => r get - ns1 pods - web-1?
        GET /api/v1/namespaces/ns1/pods/a%09b => 400
        GET /api/v1/namespaces/x/%2E%2E/kube-system/secrets => 400
        GET /api/v1/namespaces/x/%2e/secrets => 400
        GET /api/v1/namespaces/x/pods/.. => 400
        GET //api//v1/pods => 400
        GET /api//v1/pods => 400
        GET //api/v1/pods => 400
        GET /api/v1/namespaces/default/pods/ => r list - default pods - -
        GET /api/v1/pods;x=1 => 400
        GET /api/v1/namespaces/ns1/pods/p1;jsessionid=1 => 400
        GET /api/v1/namespaces/ns1/pods/p1%3Bx => 400
        GET /api/v1/namespaces/kube-system%2Fsecrets => 400
        GET /api/v1/namespaces%2fkube-system/secrets => 400
        GET /api/v1/namespaces/ns1/pods%5Cp1 => 400
        GET /api/v1/namespaces/ns1/pods\p1 => 400
        GET /api/v1/namespaces/ns1/pods/%252F => 400
        GET /api/v1/namespaces/ns1/pods/p%2525 => 400
        GET /api/v1/namespaces/ns1/pods/p1%00 => 400
        GET /api/v1/namespaces/ns1/pods/%C0%AF => 400
        GET /api/v1/namespaces/ns1/pods/%C0%AE%C0%AE => 400
        GET /api/v1/namespaces/ns1/pods/%FF => 400
        GET /api/v1/namespaces/ns1/pods/%zz => 400
        GET /api/v1/namespaces/ns1/pods/%4 => 400
        GET /api/v1/namespaces/ns1/pods/p1#frag => 400
        GET /api/v1/namespaces/ns1/pods/p%0A1 => 400
        GET /api/v1/namespaces/ns1/pods/p%7F => 400
        GET api/v1/pods => 400
        GET /api/v1/namespaces/ns1/pods/%70%31 => r get - ns1 pods - p1
        GET /api/v1/namespaces/ns1/configmaps/%C3%A9 => r get - ns1 configmaps - é
        GET /API/v1/pods => n get - - - - -
        GET /Api/V1/namespaces/kube-system/secrets => n get - - - - -
        GET /APIS/apps/v1/deployments => n get - - - - -
        GET /api/v1/namespaces/ns1/nodes/n1 => r get - ns1 nodes - n1
        GET /api/v1/namespaces/ns1/clusterroles => r list - ns1 clusterroles - -
        GET /apis/rbac.authorization.k8s.io/v1/namespaces/ns1/clusterrolebindings/crb => r get rbac.authorization.k8s.io ns1 clusterrolebindings - crb
        GET /apis/v1/pods => n get - - - - -
        GET /apis/apps/v1/namespaces/ns1/deployments/d1/status => r get apps ns1 deployments status d1
        GET /apis/apps/v1/namespaces/ns1/deployments/d1/scale/extra/parts => r get apps ns1 deployments scale d1
        GET /api/v1/namespaces/ns1/pods/p1/log?follow=true => r get - ns1 pods log p1
        POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews => r create authorization.k8s.io - selfsubjectaccessreviews - -
        POST /apis/authentication.k8s.io/v1/tokenreviews => r create authentication.k8s.io - tokenreviews - -
        GET /api/v1/namespaces/ns1/secrets?labelSelector=a%3Db => r list - ns1 secrets - -
        PATCH /api/v1/namespaces/ns1/pods/p1?dryRun=All => r patch - ns1 pods - p1
        GET /api/v1/namespaces/ns1/pods/p1?watch=true&fieldSelector=metadata.name%3Dp2 => r get - ns1 pods - p1
        """;

    private static readonly string[] Methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

    // path, group, ns, resource, sub, name
    private static readonly (string Path, string Group, string Ns, string Resource, string Sub, string Name)[] ResourcePaths =
    [
        ("/api/v1/pods", "", "", "pods", "", ""),
        ("/api/v1/nodes", "", "", "nodes", "", ""),
        ("/api/v1/nodes/n1", "", "", "nodes", "", "n1"),
        ("/api/v1/nodes/n1/status", "", "", "nodes", "status", "n1"),
        ("/api/v1/namespaces/dev/pods", "", "dev", "pods", "", ""),
        ("/api/v1/namespaces/dev/pods/web-1", "", "dev", "pods", "", "web-1"),
        ("/api/v1/namespaces/dev/pods/web-1/log", "", "dev", "pods", "log", "web-1"),
        ("/api/v1/namespaces/dev/secrets/s", "", "dev", "secrets", "", "s"),
        ("/api/v1/namespaces/dev", "", "dev", "namespaces", "", "dev"),
        ("/api/v1/namespaces/dev/status", "", "dev", "namespaces", "status", "dev"),
        ("/apis/apps/v1/deployments", "apps", "", "deployments", "", ""),
        ("/apis/apps/v1/namespaces/dev/deployments", "apps", "dev", "deployments", "", ""),
        ("/apis/apps/v1/namespaces/dev/deployments/d1", "apps", "dev", "deployments", "", "d1"),
        ("/apis/apps/v1/namespaces/dev/deployments/d1/scale", "apps", "dev", "deployments", "scale", "d1"),
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", "rbac.authorization.k8s.io", "", "clusterroles", "", "admin"),
        ("/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings", "rbac.authorization.k8s.io", "dev", "rolebindings", "", ""),
        ("/apis/batch/v1/namespaces/dev/jobs/j1/status", "batch", "dev", "jobs", "status", "j1"),
        ("/apis/networking.k8s.io/v1/namespaces/dev/ingresses/i1", "networking.k8s.io", "dev", "ingresses", "", "i1"),
        ("/api/v1/persistentvolumes/pv1", "", "", "persistentvolumes", "", "pv1"),
        ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "apiextensions.k8s.io", "", "customresourcedefinitions", "", ""),
    ];

    private static string MethodVerb(string method, string name) => method switch
    {
        "POST" => "create",
        "GET" or "HEAD" => name.Length == 0 ? "list" : "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => name.Length == 0 ? "deletecollection" : "delete",
        _ => "",
    };

    public static TheoryData<string> Rows()
    {
        var data = new TheoryData<string>();
        foreach (var line in Explicit.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            data.Add(line);
        }
        foreach (var p in ResourcePaths)
        {
            foreach (var m in Methods)
            {
                string E(string s) => s.Length == 0 ? "-" : s;
                var verb = MethodVerb(m, p.Name);
                data.Add($"{m} {p.Path} => r {(verb.Length == 0 ? "\"\"" : verb)} {E(p.Group)} {E(p.Ns)} {E(p.Resource)} {E(p.Sub)} {E(p.Name)}");
            }
        }
        return data;
    }

    [Fact]
    public void Table_has_at_least_150_rows() => Assert.True(Rows().Count >= 150, $"{Rows().Count} rows");

    [Theory]
    [MemberData(nameof(Rows))]
    public void Parse_matches_kube_apiserver(string row)
    {
        var arrow = row.IndexOf(" => ", StringComparison.Ordinal);
        var request = row[..arrow].Split(' ', 2);
        var expected = row[(arrow + 4)..].Split(' ');
        var target = request[1];
        var q = target.IndexOf('?', StringComparison.Ordinal);
        var (path, query) = q < 0 ? (target, "") : (target[..q], target[(q + 1)..]);

        var ok = RequestInfoParser.TryParse(request[0], path, query, out var info, out var error);
        if (expected[0] is "400" or "500")
        {
            Assert.False(ok, $"expected {expected[0]}, got {info}");
            Assert.Equal(int.Parse(expected[0], System.Globalization.CultureInfo.InvariantCulture), error.StatusCode);
            Assert.NotEmpty(error.Message);
            return;
        }
        Assert.True(ok, error.Message);
        static string V(string s) => s == "-" ? "" : s == "\"\"" ? "" : s;
        Assert.Equal(expected[0] == "r", info!.IsResourceRequest);
        Assert.Equal(V(expected[1]), info.Verb);
        Assert.Equal(V(expected[2]), info.ApiGroup);
        Assert.Equal(V(expected[3]), info.Namespace);
        Assert.Equal(V(expected[4]), info.Resource);
        Assert.Equal(V(expected[5]), info.Subresource);
        Assert.Equal(V(expected[6]), info.Name);
    }

    [Fact]
    public void Watch_path_error_is_kube_apiservers_500_text()
    {
        var ex = Assert.Throws<RequestInfoException>(() => RequestInfoParser.Parse("GET", "/api/v1/watch", ""));
        Assert.Equal(500, ex.StatusCode);
        Assert.Equal("failed to create RequestInfo: unable to determine kind and namespace from url, /api/v1/watch", ex.Message);
    }

    [Fact]
    public void Selectors_are_recorded_for_list_but_not_for_path_watch()
    {
        var list = RequestInfoParser.Parse("GET", "/api/v1/namespaces/ns1/pods", "labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1");
        Assert.Equal("app=web", list.LabelSelector);
        Assert.Equal("spec.nodeName=n1", list.FieldSelector);
        var pathWatch = RequestInfoParser.Parse("GET", "/api/v1/watch/namespaces/ns1/pods", "labelSelector=app%3Dweb");
        Assert.Equal("", pathWatch.LabelSelector);
    }

    [Theory]
    [InlineData("/api/v1/namespaces/ns1/pods/p1/exec", true)]
    [InlineData("/api/v1/namespaces/ns1/pods/p1/log", true)]
    [InlineData("/api/v1/namespaces/ns1/pods/p1", false)]
    [InlineData("/debug/pprof/heap", true)]
    [InlineData("/api/v1/watch/pods", true)]
    public void Long_running_requests_are_recognised(string path, bool longRunning) =>
        Assert.Equal(longRunning, RequestInfoParser.Parse("GET", path, "").IsLongRunning);
}
