using Portcullis.Check.Rules;

namespace Portcullis.Check.Tests;

/// <summary>
/// Every labelled checkov and kubescape manifest gives its label for the matching check. A label maps onto the four
/// statuses as: PASSED ⇒ PASS; FAILED ⇒ flagged (FAIL, or WARN for checks the CIS benchmark marks Manual).
/// Where a tool's label contradicts kube-apiserver's behaviour or the CIS 1.12 text, the case is listed in
/// <see cref="Deviations"/> with the reason, and the test pins our result instead.
/// </summary>
public sealed class FixtureExpectationTests
{
    private static readonly Dictionary<string, string?> CheckovChecks = new()
    {
        ["example_ApiServerAdmissionControlAlwaysAdmit"] = "1.2.10",
        ["example_ApiServerAlwaysPullImagesPlugin"] = "1.2.11",
        ["example_ApiServerAnonymousAuth"] = "1.2.1",
        ["example_ApiServerAuditLog"] = "1.2.16",
        ["example_ApiServerAuditLogMaxAge"] = "1.2.17",
        ["example_ApiServerAuditLogMaxBackup"] = "1.2.18",
        ["example_ApiServerAuditLogMaxSize"] = "1.2.19",
        ["example_ApiServerAuthorizationModeNode"] = "1.2.7",
        ["example_ApiServerAuthorizationModeNotAlwaysAllow"] = "1.2.6",
        ["example_ApiServerAuthorizationModeRBAC"] = "1.2.8",
        ["example_ApiServerBasicAuthFile"] = "PC-L3-BASIC-AUTH",
        ["example_ApiServerEncryptionProviders"] = "1.2.27",
        ["example_ApiServerEtcdCaFile"] = "1.2.26",
        ["example_ApiServerEtcdCertAndKey"] = "1.2.23",
        ["example_ApiServerInsecureBindAddress"] = "PC-L1-INSECURE-BIND",
        ["example_ApiServerInsecurePort"] = "PC-L1-INSECURE-PORT",
        ["example_ApiServerKubeletClientCertAndKey"] = "1.2.4",
        ["example_ApiServerKubeletHttps"] = "PC-L2-KUBELET-HTTPS",
        ["example_ApiServerNamespaceLifecyclePlugin"] = "1.2.13",
        ["example_ApiServerNodeRestrictionPlugin"] = "1.2.14",
        ["example_ApiServerPodSecurityPolicyPlugin"] = null, // PodSecurityPolicy was removed in Kubernetes 1.25; no check.
        ["example_ApiServerProfiling"] = "1.2.15",
        ["example_ApiServerRequestTimeout"] = "1.2.20",
        ["example_ApiServerSecurePort"] = "PC-L1-SECURE-PORT",
        ["example_ApiServerSecurityContextDenyPlugin"] = null, // SecurityContextDeny was removed in Kubernetes 1.30; no check.
        ["example_ApiServerServiceAccountKeyFile"] = "1.2.22",
        ["example_ApiServerServiceAccountLookup"] = "1.2.21",
        ["example_ApiServerServiceAccountPlugin"] = "1.2.12",
        ["example_ApiServerStrongCryptographicCiphers"] = "1.2.29",
        ["example_ApiServerTlsCertAndKey"] = "1.2.24",
        ["example_ApiServerTokenAuthFile"] = "1.2.2",
        ["example_ApiServerkubeletCertificateAuthority"] = "1.2.5",
    };

    private static readonly Dictionary<string, string?> KubescapeChecks = new()
    {
        ["ensure-that-the-API-Server-only-makes-use-of-Strong-Cryptographic-Ciphers"] = "1.2.29",
        ["ensure-that-the-API-Server-only-makes-use-of-Strong-Cryptographic-Ciphers-cis1-10"] = "1.2.29",
        ["ensure-that-the-admission-control-plugin-AlwaysAdmit-is-not-set"] = "1.2.10",
        ["ensure-that-the-admission-control-plugin-AlwaysPullImages-is-set"] = "1.2.11",
        ["ensure-that-the-admission-control-plugin-EventRateLimit-is-set"] = "1.2.9",
        ["ensure-that-the-admission-control-plugin-NamespaceLifecycle-is-set"] = "1.2.13",
        ["ensure-that-the-admission-control-plugin-NodeRestriction-is-set"] = "1.2.14",
        ["ensure-that-the-admission-control-plugin-SecurityContextDeny-is-set-if-PodSecurityPolicy-is-not-used"] = null, // removed plugins
        ["ensure-that-the-admission-control-plugin-ServiceAccount-is-set"] = "1.2.12",
        ["ensure-that-the-api-server-DenyServiceExternalIPs-is-not-set"] = null, // older benchmark; contradicts cis-1.12 1.2.3 below
        ["ensure-that-the-api-server-DenyServiceExternalIPs-is-set"] = "1.2.3",
        ["ensure-that-the-api-server-anonymous-auth-argument-is-set-to-false"] = "1.2.1",
        ["ensure-that-the-api-server-audit-log-maxage-argument-is-set-to-30-or-as-appropriate"] = "1.2.17",
        ["ensure-that-the-api-server-audit-log-maxbackup-argument-is-set-to-10-or-as-appropriate"] = "1.2.18",
        ["ensure-that-the-api-server-audit-log-maxsize-argument-is-set-to-100-or-as-appropriate"] = "1.2.19",
        ["ensure-that-the-api-server-audit-log-path-argument-is-set"] = "1.2.16",
        ["ensure-that-the-api-server-authorization-mode-argument-includes-Node"] = "1.2.7",
        ["ensure-that-the-api-server-authorization-mode-argument-includes-RBAC"] = "1.2.8",
        ["ensure-that-the-api-server-authorization-mode-argument-is-not-set-to-AlwaysAllow"] = "1.2.6",
        ["ensure-that-the-api-server-client-ca-file-argument-is-set-as-appropriate"] = "1.2.25",
        ["ensure-that-the-api-server-encryption-provider-config-argument-is-set-as-appropriate"] = "1.2.27",
        ["ensure-that-the-api-server-etcd-cafile-argument-is-set-as-appropriate"] = "1.2.26",
        ["ensure-that-the-api-server-etcd-certfile-and-etcd-keyfile-arguments-are-set-as-appropriate"] = "1.2.23",
        ["ensure-that-the-api-server-kubelet-certificate-authority-argument-is-set-as-appropriate"] = "1.2.5",
        ["ensure-that-the-api-server-kubelet-client-certificate-and-kubelet-client-key-arguments-are-set-as-appropriate"] = "1.2.4",
        ["ensure-that-the-api-server-profiling-argument-is-set-to-false"] = "1.2.15",
        ["ensure-that-the-api-server-request-timeout-argument-is-set-as-appropriate"] = "1.2.20",
        ["ensure-that-the-api-server-secure-port-argument-is-not-set-to-0"] = "PC-L1-SECURE-PORT",
        ["ensure-that-the-api-server-service-account-extend-token-expiration-is-set-to-false"] = "1.2.30",
        ["ensure-that-the-api-server-service-account-key-file-argument-is-set-as-appropriate"] = "1.2.22",
        ["ensure-that-the-api-server-service-account-lookup-argument-is-set-to-true"] = "1.2.21",
        ["ensure-that-the-api-server-tls-cert-file-and-tls-private-key-file-arguments-are-set-as-appropriate"] = "1.2.24",
        ["ensure-that-the-api-server-token-auth-file-parameter-is-not-set"] = "1.2.2",
        ["etcd-unique-ca"] = "2.7",
        ["insecure-port-flag"] = "PC-L1-INSECURE-PORT",
        ["k8s-audit-logs-enabled-native-cis"] = "3.2.1",
    };

    /// <summary>Fixture (relative path) ⇒ (our status, why we disagree with the tool's label).</summary>
    public static readonly Dictionary<string, (CheckStatus Ours, string Why)> Deviations = new()
    {
        ["apiserver-manifests/checkov/example_ApiServerAuthorizationModeNotAlwaysAllow/ApiServer-PASSED-2.yaml"] =
            (CheckStatus.Fail, "no --authorization-mode: kube-apiserver's default is AlwaysAllow (spec §4.1), so 1.2.6 fails"),
        ["apiserver-manifests/checkov/example_ApiServerServiceAccountLookup/ApiServer-FAILED-2.yaml"] =
            (CheckStatus.Pass, "no --service-account-lookup: the default is true; CIS 1.2.21 passes when absent"),
        ["apiserver-manifests/checkov/example_ApiServerNamespaceLifecyclePlugin/ApiServerNamespaceLifecyclePlugin-FAILED.yaml"] =
            (CheckStatus.Pass, "NamespaceLifecycle is on by default; --enable-admission-plugins=other does not turn it off (CIS 1.2.13 looks at --disable-admission-plugins)"),
        ["apiserver-manifests/checkov/example_ApiServerServiceAccountPlugin/ApiServerServiceAccountPlugin-FAILED.yaml"] =
            (CheckStatus.Pass, "ServiceAccount is on by default; --enable-admission-plugins=other does not turn it off (CIS 1.2.12 looks at --disable-admission-plugins)"),
        ["apiserver-manifests/kubescape-regolibrary/ensure-that-the-API-Server-only-makes-use-of-Strong-Cryptographic-Ciphers/passed/1.yaml"] =
            (CheckStatus.Fail, "the list includes 3DES and CBC suites that are not in CIS 1.2.29's strong list"),
        ["apiserver-manifests/kubescape-regolibrary/ensure-that-the-API-Server-only-makes-use-of-Strong-Cryptographic-Ciphers/rke2-args/1.yaml"] =
            (CheckStatus.Fail, "the list includes 3DES and CBC suites that are not in CIS 1.2.29's strong list"),
        ["apiserver-manifests/kubescape-regolibrary/ensure-that-the-API-Server-only-makes-use-of-Strong-Cryptographic-Ciphers-cis1-10/passed/1.yaml"] =
            (CheckStatus.Fail, "the list includes CBC suites that are not in CIS 1.2.29's strong list"),
        ["apiserver-manifests/kubescape-regolibrary/ensure-that-the-API-Server-only-makes-use-of-Strong-Cryptographic-Ciphers-cis1-10/rke2-args/1.yaml"] =
            (CheckStatus.Fail, "the list includes CBC suites that are not in CIS 1.2.29's strong list"),
        ["apiserver-manifests/kubescape-regolibrary/ensure-that-the-api-server-audit-log-maxbackup-argument-is-set-to-10-or-as-appropriate/failed/2.yaml"] =
            (CheckStatus.Pass, "--audit-log-maxbackup=10 meets CIS 1.2.18 (≥ 10)"),
        ["apiserver-manifests/kubescape-regolibrary/ensure-that-the-api-server-audit-log-maxsize-argument-is-set-to-100-or-as-appropriate/failed/1.yaml"] =
            (CheckStatus.Pass, "--audit-log-maxsize=100 meets CIS 1.2.19 (≥ 100)"),
        ["apiserver-manifests/kubescape-regolibrary/ensure-that-the-api-server-request-timeout-argument-is-set-as-appropriate/rke2-args-fail/1.yaml"] =
            (CheckStatus.Pass, "--request-timeout=300s is the value CIS 1.2.20's own remediation suggests"),
    };

    public static TheoryData<string, string, bool> LabelledCases()
    {
        var data = new TheoryData<string, string, bool>();
        var checkov = TestFiles.Fixture("apiserver-manifests/checkov");
        foreach (var dir in Directory.GetDirectories(checkov).Order(StringComparer.Ordinal))
        {
            var id = CheckovChecks[Path.GetFileName(dir)];
            if (id is null)
            {
                continue;
            }
            foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileNameWithoutExtension(file);
                var passed = name.Contains("PASSED", StringComparison.Ordinal);
                Assert.True(passed || name.Contains("FAILED", StringComparison.Ordinal), $"unlabelled checkov fixture {file}");
                data.Add(Path.GetRelativePath(TestFiles.Fixtures, file), id, passed);
            }
        }
        var kubescape = TestFiles.Fixture("apiserver-manifests/kubescape-regolibrary");
        foreach (var dir in Directory.GetDirectories(kubescape).Order(StringComparer.Ordinal))
        {
            var id = KubescapeChecks[Path.GetFileName(dir)];
            if (id is null)
            {
                continue;
            }
            foreach (var file in Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                var label = Path.GetFileName(Path.GetDirectoryName(file))!;
                bool passed = label switch
                {
                    "passed" or "test-passed" or "rke2-args" => true,
                    "failed" or "test-failed" or "rke2-args-fail" or "test" => false,
                    _ when label.StartsWith("pass-", StringComparison.Ordinal) => true,
                    _ when label.StartsWith("fail-", StringComparison.Ordinal) => false,
                    _ => throw new InvalidOperationException($"unknown kubescape label {label}"),
                };
                data.Add(Path.GetRelativePath(TestFiles.Fixtures, file), id, passed);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(LabelledCases))]
    public void Labelled_manifest_gives_its_label_for_the_matching_check(string fixture, string checkId, bool labelledPassed)
    {
        var report = ConfigurationCheck.FromManifest(TestFiles.Fixture(fixture), root: TestFiles.NewDirectory());
        Assert.Null(report.InputError);
        var finding = Assert.Single(report.Findings, f => f.Id == checkId);
        if (Deviations.TryGetValue(fixture.Replace('\\', '/'), out var deviation))
        {
            Assert.True(finding.Status == deviation.Ours, $"{fixture}: expected our documented {deviation.Ours} ({deviation.Why}), got {finding.Status}: {finding.Evidence}");
            return;
        }
        if (labelledPassed)
        {
            Assert.True(finding.Status == CheckStatus.Pass, $"{fixture}: labelled PASSED, {checkId} gave {finding.Status}: {finding.Evidence}");
        }
        else
        {
            Assert.True(finding.Status is CheckStatus.Fail or CheckStatus.Warn, $"{fixture}: labelled FAILED, {checkId} gave {finding.Status}: {finding.Evidence}");
        }
    }

    [Fact]
    public void Every_deviation_names_a_fixture_that_exists()
    {
        foreach (var path in Deviations.Keys)
        {
            Assert.True(File.Exists(TestFiles.Fixture(path)), path);
        }
    }

    [Theory]
    [InlineData("admission/checkov/ApiServerAdmissionControlEventRateLimit-PASSED.yaml", true)]
    [InlineData("admission/checkov/ApiServerAdmissionControlEventRateLimit-FAILED.yaml", false)]
    public void Checkov_admission_configuration_gives_its_label_for_the_EventRateLimit_configuration_check(string fixture, bool labelledPassed)
    {
        var report = ConfigurationCheck.FromFlags(
            $"kube-apiserver --enable-admission-plugins=NodeRestriction,EventRateLimit --admission-control-config-file={TestFiles.Fixture(fixture)}", root: null);
        var finding = Assert.Single(report.Findings, f => f.Id == RuleCatalog.EventRateLimitConfig.Id);
        Assert.Equal(labelledPassed ? CheckStatus.Pass : CheckStatus.Fail, finding.Status);
    }
}
