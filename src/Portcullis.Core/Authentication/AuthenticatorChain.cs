using System.Buffers.Text;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Authentication.Cache;
using Portcullis.Authentication.Oidc;
using Portcullis.Authentication.ServiceAccounts;
using Portcullis.Authentication.Tokens;
using Portcullis.Authentication.Webhook;
using Portcullis.Configuration;
using Portcullis.Tls;

namespace Portcullis.Authentication;

/// <summary>Tuning of <see cref="AuthenticatorChain"/>; the defaults are the production ones, tests shorten the timings.</summary>
public sealed record AuthenticatorChainOptions
{
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>Where the chain and its authenticators log (key fetch failures, webhook outages); the gateway passes its own.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
    /// <summary>Bound of the shared token result cache (entries); kube-apiserver's token cache holds 32k (kubernetes#83643).</summary>
    public int TokenCacheCapacity { get; init; } = 32_768;
    /// <summary>How long a JWT/service-account success is reused (kube-apiserver's token union: 10 s); never past exp.</summary>
    public TimeSpan TokenSuccessTtl { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Upper bound of how long a rejected token is remembered (the webhook's negative TTL is usually shorter).</summary>
    public TimeSpan NegativeCacheTtl { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Longer bearer tokens are refused before hashing or parsing (and never reach the webhook).</summary>
    public int MaxTokenLength { get; init; } = JwtToken.MaxLength;
    public OidcKeySetOptions Oidc { get; init; } = new();
    /// <summary>Timeouts and retries of the TokenReview webhook; version, cacheTTL and audiences come from the configuration.</summary>
    public WebhookTokenAuthenticatorOptions Webhook { get; init; } = new();
}

/// <summary>Anonymous access: off, on for every path, or on for the listed exact paths only.</summary>
public sealed record AnonymousPolicy(bool Enabled, IReadOnlyList<string> Paths)
{
    public static AnonymousPolicy Disabled { get; } = new(false, []);

    public bool Allows(string path) => Enabled && (Paths.Count == 0 || Paths.Contains(path));
}

/// <summary>
/// kube-apiserver's request authentication (spec §2.1) for the gateway: x509 → token union (token file → service
/// accounts → JWT/OIDC issuers → webhook) for the Authorization bearer token and then the WebSocket-subprotocol token;
/// first success wins, errors are aggregated, anonymous only when no credential was presented at all, and
/// <c>system:authenticated</c> added to every authenticated user. Build one per configuration snapshot with
/// <see cref="Create(GatewayConfiguration, AuthenticatorChainOptions?)"/>; swap it whole on reload and dispose the old one.
/// </summary>
public sealed class AuthenticatorChain : IDisposable
{
    public const string BearerWebSocketProtocolPrefix = "base64url.bearer.authorization.k8s.io.";
    public const string ExtraSpaceWarning = "the provided Authorization header contains extra space before the bearer token, and is ignored";
    public const string X509Name = "x509";
    public const string TokenFileName = "token-file";

    private readonly IReadOnlyList<ITokenAuthenticator> _tokenAuthenticators;
    private readonly AuthenticatorChainOptions _options;
    private readonly ILogger _logger;
    private volatile TokenFile _tokenFile;

    public AuthenticatorChain(
        TokenFile? tokenFile,
        IReadOnlyList<ITokenAuthenticator> tokenAuthenticators,
        AnonymousPolicy? anonymous = null,
        ClientCertificateValidator? certificateValidator = null,
        AuthenticatorChainOptions? options = null)
    {
        _tokenFile = tokenFile ?? TokenFile.Empty;
        _tokenAuthenticators = tokenAuthenticators;
        Anonymous = anonymous ?? AnonymousPolicy.Disabled;
        CertificateValidator = certificateValidator;
        _options = options ?? new AuthenticatorChainOptions();
        _logger = _options.LoggerFactory.CreateLogger<AuthenticatorChain>();
        Cache = new TokenCache(_options.TokenCacheCapacity, _options.Time);
    }

    /// <summary>Verifies client certificates against <c>tls.clientCAFile</c>; null when x509 authentication is off. Call once per connection.</summary>
    public ClientCertificateValidator? CertificateValidator { get; }
    public AnonymousPolicy Anonymous { get; }
    public TokenCache Cache { get; }

    /// <summary>Finds the SHA-256 of a token that already authenticated without hashing it again (see <see cref="TokenDigestMemo"/>).</summary>
    public TokenDigestMemo Digests { get; } = new();
    public IReadOnlyList<ITokenAuthenticator> TokenAuthenticators => _tokenAuthenticators;
    public TokenFile TokenFile => _tokenFile;

    /// <summary>Swaps the static token table (the gateway calls this after <see cref="TokenFile.Load"/> on a file change).</summary>
    public void ReplaceTokenFile(TokenFile tokenFile) => _tokenFile = tokenFile;

    /// <summary>Each JWT issuer: whether its keys are loaded and the last fetch error (for /readyz and logs; no secret in it).</summary>
    public IReadOnlyList<(string Issuer, bool Ready, string? LastError)> IssuerStates =>
        [.. _tokenAuthenticators.OfType<JwtAuthenticator>().Select(j => (j.Spec.IssuerUrl, j.Keys.IsInitialized, j.Keys.LastError))];

    /// <summary>Completes when every JWT issuer has its keys (for /readyz and tests); the chain serves before that.</summary>
    public Task WhenIssuersReadyAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(_tokenAuthenticators.OfType<JwtAuthenticator>().Select(j => j.Keys.Ready)).WaitAsync(cancellationToken);

    /// <summary>
    /// Builds the chain from the gateway configuration: tls.clientCAFile, authentication.tokenAuthFile, serviceAccount,
    /// oidc flags or authenticationConfigFile, webhook, anonymous. Every problem is reported at once in a
    /// <see cref="ConfigurationException"/>; OIDC issuers start fetching their keys in the background.
    /// </summary>
    public static AuthenticatorChain Create(GatewayConfiguration config, AuthenticatorChainOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new AuthenticatorChainOptions();
        var errors = new List<ConfigError>();
        var source = config.SourcePath;
        void Fail(string field, string message) => errors.Add(new ConfigError(source, 0, field, message));
        var authn = config.Authentication;

        ClientCertificateValidator? validator = null;
        if (config.Tls is { ClientCAFile.Length: > 0 } tls)
        {
            try
            {
                validator = ClientCertificateValidator.FromFile(config.Resolve(tls.ClientCAFile), options.Time);
            }
            catch (Exception ex) when (ex is IOException or FormatException or System.Security.Cryptography.CryptographicException)
            {
                Fail("tls.clientCAFile", ex.Message);
            }
        }

        TokenFile? tokenFile = null;
        if (authn.TokenAuthFile.Length > 0)
        {
            try
            {
                tokenFile = TokenFile.Load(config.Resolve(authn.TokenAuthFile));
            }
            catch (Exception ex) when (ex is IOException or FormatException)
            {
                Fail("authentication.tokenAuthFile", ex.Message);
            }
        }

        var sa = authn.ServiceAccount;
        IReadOnlyList<string> apiAudiences = sa.Audiences.Count > 0 ? sa.Audiences : sa.Issuers.Count > 0 ? [sa.Issuers[0]] : [];
        var authenticators = new List<ITokenAuthenticator>();
        if (sa.KeyFiles.Count > 0)
        {
            if (sa.Issuers.Count == 0)
            {
                Fail("authentication.serviceAccount.issuers", "at least one issuer is required when keyFiles are set (--service-account-issuer)");
            }
            var keys = new List<JwtKey>();
            for (var i = 0; i < sa.KeyFiles.Count; i++)
            {
                try
                {
                    keys.AddRange(JwtKey.LoadPemFile(config.Resolve(sa.KeyFiles[i])));
                }
                catch (Exception ex) when (ex is IOException or FormatException or System.Security.Cryptography.CryptographicException)
                {
                    Fail($"authentication.serviceAccount.keyFiles[{i}]", ex.Message);
                }
            }
            if (sa.Issuers.Count > 0)
            {
                authenticators.Add(new ServiceAccountAuthenticator(keys, sa.Issuers, apiAudiences, options.Time, options.TokenSuccessTtl));
            }
        }

        var anonymous = new AnonymousPolicy(authn.Anonymous.Enabled, authn.Anonymous.Paths);
        var specs = new List<JwtAuthenticatorSpec>();
        if (authn.Oidc.IssuerURL.Length > 0)
        {
            string? ca = null;
            if (authn.Oidc.CaFile.Length > 0)
            {
                try
                {
                    ca = File.ReadAllText(config.Resolve(authn.Oidc.CaFile));
                }
                catch (IOException ex)
                {
                    Fail("authentication.oidc.caFile", ex.Message);
                }
            }
            specs.Add(JwtAuthenticatorSpec.FromFlags(authn.Oidc, ca));
        }
        if (authn.AuthenticationConfigFile.Length > 0)
        {
            try
            {
                var file = AuthenticationConfigurationFile.Load(config.Resolve(authn.AuthenticationConfigFile), sa.Issuers);
                specs.AddRange(file.Authenticators);
                if (file.Anonymous is { } fileAnonymous)
                {
                    if (authn.Anonymous.Enabled)
                    {
                        Fail("authentication.anonymous", "cannot be enabled when authenticationConfigFile configures anonymous (as --anonymous-auth and AuthenticationConfiguration.anonymous are exclusive)");
                    }
                    anonymous = new AnonymousPolicy(fileAnonymous.Enabled, [.. fileAnonymous.Conditions.Select(c => c.Path)]);
                }
            }
            catch (ConfigurationException ex)
            {
                errors.AddRange(ex.Errors);
            }
            catch (IOException ex)
            {
                Fail("authentication.authenticationConfigFile", ex.Message);
            }
        }

        WebhookTokenAuthenticator? webhook = null;
        if (authn.Webhook.ConfigFile.Length > 0)
        {
            try
            {
                webhook = WebhookTokenAuthenticator.FromKubeconfig(config.Resolve(authn.Webhook.ConfigFile), options.Webhook with
                {
                    Version = authn.Webhook.Version,
                    CacheTtl = authn.Webhook.CacheTTL,
                    NegativeCacheTtl = options.Webhook.NegativeCacheTtl < authn.Webhook.CacheTTL ? options.Webhook.NegativeCacheTtl : authn.Webhook.CacheTTL,
                    Audiences = apiAudiences,
                }, options.Time, options.LoggerFactory.CreateLogger<WebhookTokenAuthenticator>());
            }
            catch (Exception ex) when (ex is IOException or FormatException or ArgumentException or System.Security.Cryptography.CryptographicException or YamlDotNet.Core.YamlException)
            {
                Fail("authentication.webhook.configFile", ex.Message);
            }
        }

        if (errors.Count > 0)
        {
            webhook?.Dispose();
            throw new ConfigurationException(errors);
        }
        foreach (var spec in specs)
        {
            authenticators.Add(JwtAuthenticator.Create(spec, options.Oidc, options.Time, options.TokenSuccessTtl, options.LoggerFactory));
        }
        if (webhook is not null)
        {
            authenticators.Add(webhook);
        }
        return new AuthenticatorChain(tokenFile, authenticators, anonymous, validator, options);
    }

    /// <summary>Authenticates one request. Completes synchronously (no allocation beyond the result) unless a key fetch or a webhook call is needed.</summary>
    public ValueTask<ChainResult> AuthenticateAsync(AuthenticationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        // Not measured here: the gateway's authentication stage times each attempt once and records it on its meter
        // (authentication_attempts, authentication_duration_seconds, portcullis_authentication_attempts_total).
        return TryFastPath(request) is { } fast ? new ValueTask<ChainResult>(fast) : AuthenticateCoreAsync(request, cancellationToken);
    }

    /// <summary>
    /// The two common cases without the general machinery: a request on a verified client-certificate connection with no
    /// token, and a single bearer token whose result is cached. Anything else (or any doubt) returns null.
    /// </summary>
    private ChainResult? TryFastPath(AuthenticationRequest request)
    {
        if (request.IsUpgrade || request.ClientCertificateError is not null || request.ClientCertificateUser is not null)
        {
            return null;
        }
        var headers = request.AuthorizationHeaders;
        if (request.ClientCertificate is { } connection)
        {
            if (headers.Count == 0 && connection.Accepted is { } accepted)
            {
                return accepted;
            }
            return null;
        }
        if (headers.Count != 1)
        {
            return null;
        }
        var bearer = ParseBearer(headers[0], out var warning);
        if (!bearer.IsPresent || warning is not null || bearer.Length > _options.MaxTokenLength)
        {
            return null;
        }
        var digest = Digests.Of(bearer.Span);
        if (_tokenFile.Count > 0 && _tokenFile.Find(digest) is not null)
        {
            return null; // token-file users are cheap on the general path and never cached
        }
        if (Cache.TryGet(digest, out var cached) && cached.Authenticated && cached.Result is { } shared)
        {
            return shared;
        }
        return null;
    }

    /// <summary>A token as a slice of the header it came in, so a cache hit never copies it.</summary>
    private readonly struct Credential(string source, int start, int length)
    {
        public bool IsPresent => source is not null;
        public ReadOnlySpan<char> Span => source.AsSpan(start, length);
        public int Length => length;
        public string Materialize() => start == 0 && length == source.Length ? source : source.Substring(start, length);
    }

    private async ValueTask<ChainResult> AuthenticateCoreAsync(AuthenticationRequest request, CancellationToken cancellationToken)
    {
        List<string>? warnings = null;
        List<string>? errors = null;

        if (request.AuthorizationHeaders.Count > 1)
        {
            // Go's Header.Get would silently take the first; two credentials in one request are refused outright.
            return Reject($"request has {request.AuthorizationHeaders.Count} Authorization headers; at most one is accepted", isError: true, null, null, null);
        }
        Credential bearer = default;
        if (request.AuthorizationHeaders.Count == 1)
        {
            bearer = ParseBearer(request.AuthorizationHeaders[0], out var warning);
            if (warning is not null)
            {
                (warnings ??= []).Add(warning);
            }
        }

        string? socketToken = null;
        string? rewritten = null;
        if (request.IsUpgrade && request.WebSocketProtocols.Count > 0)
        {
            var error = ParseWebSocketProtocols(request.WebSocketProtocols, out socketToken, out rewritten);
            if (error is not null)
            {
                (errors ??= []).Add(error);
            }
        }

        var socket = socketToken is null ? default : new Credential(socketToken, 0, socketToken.Length);
        TokenDigest? bearerDigest = bearer.IsPresent && bearer.Length <= _options.MaxTokenLength ? Digests.Of(bearer.Span) : null;
        TokenDigest? socketDigest = socket.IsPresent && socket.Length <= _options.MaxTokenLength ? Digests.Of(socket.Span) : null;
        var digest = bearerDigest ?? socketDigest;

        // 1. x509 (from the connection's cached verification).
        var connection = request.ClientCertificate;
        if ((connection?.Error ?? request.ClientCertificateError) is { } certError)
        {
            (errors ??= []).Add(certError);
        }
        if ((connection?.User ?? request.ClientCertificateUser) is { } certUser)
        {
            if (IdentityValidator.Validate(certUser) is { } problem)
            {
                // A CN or O a CSR signer let through: the certificate verified but names an identity that cannot be forwarded.
                return Reject(X509Name + ": " + problem, isError: true, warnings, digest, rewritten);
            }
            var presented = bearer.IsPresent ? bearer : socket;
            if (!presented.IsPresent)
            {
                if (connection is not null && warnings is null && rewritten is null)
                {
                    // The connection's result is reused for every request on it: no allocation per request.
                    return connection.Accepted ??= Accept(certUser, X509Name, null, null, null, null);
                }
                return Accept(certUser, X509Name, null, warnings, null, rewritten);
            }
            // Pinniped's rule (tokenPassthroughRoundTripper): a client certificate and a bearer token in one request must
            // name the same user. kube-apiserver would silently take the certificate; a gateway that forwards by
            // impersonation must not pick one of two identities, so a token that fails or names someone else is a 401.
            var tokenOutcome = await AuthenticateTokenAsync(presented, digest, cancellationToken).ConfigureAwait(false);
            if (tokenOutcome.User is null)
            {
                return Reject("client certificate accompanied by an invalid bearer token: " + tokenOutcome.Error, isError: true, warnings, digest, rewritten);
            }
            if (tokenOutcome.User.Name != certUser.Name)
            {
                return Reject($"client certificate (user \"{certUser.Name}\") and bearer token (user \"{tokenOutcome.User.Name}\") identify different users", isError: true, warnings, digest, rewritten);
            }
            return Accept(certUser, X509Name, null, warnings, digest, rewritten);
        }

        // 2. Authorization bearer token, then 3. the WebSocket-subprotocol token, each through the token union.
        for (var i = 0; i < 2; i++)
        {
            var token = i == 0 ? bearer : socket;
            if (!token.IsPresent)
            {
                continue;
            }
            var tokenDigest = i == 0 ? bearerDigest : socketDigest;
            var outcome = await AuthenticateTokenAsync(token, tokenDigest, cancellationToken).ConfigureAwait(false);
            if (outcome.User is not null)
            {
                // The digest of the token that authenticated, never of one that failed before it: the deny list and
                // Passthrough match it, so a revoked subprotocol token cannot hide behind an invalid Authorization token.
                if (outcome.Cached is { } entry && warnings is null && rewritten is null && i == 0)
                {
                    // A cached token's result is shared by every request that presents it (ChainResult is immutable).
                    return entry.Result ??= Accept(outcome.User, outcome.Authenticator, outcome.Annotations, null, tokenDigest, null);
                }
                return Accept(outcome.User, outcome.Authenticator, outcome.Annotations, warnings, tokenDigest, rewritten);
            }
            (errors ??= []).Add(outcome.Error!);
        }

        if (errors is not null)
        {
            return Reject(errors.Count == 1 ? errors[0] : "[" + string.Join(", ", errors) + "]", isError: true, warnings, digest, rewritten);
        }
        if (Anonymous.Allows(request.Path))
        {
            return new ChainResult
            {
                Authenticated = true,
                User = UserInfo.AnonymousUser,
                Authenticator = ChainResult.AnonymousAuthenticator,
                Warnings = (IReadOnlyList<string>?)warnings ?? [],
                RewrittenWebSocketProtocol = rewritten,
            };
        }
        var reason = request.AuthorizationHeaders.Count == 1 && !bearer.IsPresent
            ? "no credentials: the Authorization header is not a usable bearer token (Basic and other schemes are not accepted)"
            : "no credentials";
        return Reject(reason, isError: false, warnings, digest, rewritten);
    }

    private readonly record struct TokenOutcome(UserInfo? User, string Authenticator, string? Error, IReadOnlyDictionary<string, string>? Annotations,
        CachedTokenResult? Cached = null);

    private async ValueTask<TokenOutcome> AuthenticateTokenAsync(Credential token, TokenDigest? maybeDigest, CancellationToken cancellationToken)
    {
        if (maybeDigest is not { } digest)
        {
            return new TokenOutcome(null, "", $"invalid bearer token: token is {token.Length} bytes, more than the {_options.MaxTokenLength} accepted", null);
        }
        if (_tokenFile.Find(digest) is { } fileUser)
        {
            if (IdentityValidator.Validate(fileUser) is { } problem)
            {
                Portcullis.Diagnostics.CoreLog.UnforwardableIdentity(_logger, TokenFileName, Portcullis.Diagnostics.SafeText.Of(problem, 300));
                return new TokenOutcome(null, "", "invalid bearer token: " + TokenFileName + ": " + problem, null);
            }
            return new TokenOutcome(fileUser, TokenFileName, null, null);
        }
        if (Cache.TryGet(digest, out var cached))
        {
            if (cached.Authenticated)
            {
                return new TokenOutcome(cached.User, cached.Authenticator, null, cached.AuditAnnotations, cached);
            }
            return new TokenOutcome(null, "", cached.Error, null);
        }

        var request = new TokenRequest(token.Materialize(), digest);
        List<string>? errors = null;
        var negativeTtl = _options.NegativeCacheTtl;
        var now = _options.Time.GetUtcNow();
        foreach (var authenticator in _tokenAuthenticators)
        {
            TokenResult result;
            try
            {
                result = await authenticator.AuthenticateTokenAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // A bug or an unexpected failure in one authenticator fails this token closed, never the request pipeline.
                result = TokenResult.Unavailable($"{authenticator.Name}: {ex.GetType().Name}: {ex.Message}");
                Portcullis.Diagnostics.CoreLog.AuthenticatorFailed(_logger, authenticator.Name, Portcullis.Diagnostics.SafeText.Of(ex.GetType().Name + ": " + ex.Message, 300));
            }
            if (result.Outcome == AuthenticationOutcome.Success && IdentityValidator.Validate(result.User!) is { } problem)
            {
                // The authenticator vouched for the token but names an identity that cannot be forwarded (a claim, a CEL
                // mapping or a webhook answer with CR/LF, ...): the token is refused, and the union ends here rather than
                // letting a later authenticator pick another identity for it. Remembered like any rejection.
                var refused = "invalid bearer token: " + authenticator.Name + ": " + problem;
                Portcullis.Diagnostics.CoreLog.UnforwardableIdentity(_logger, authenticator.Name, Portcullis.Diagnostics.SafeText.Of(problem, 300));
                Cache.Set(digest, new CachedTokenResult(false, null, "", refused, null), negativeTtl);
                return new TokenOutcome(null, "", refused, null);
            }
            switch (result.Outcome)
            {
                case AuthenticationOutcome.Success:
                    var ttl = result.CacheFor;
                    if (request.Jwt?.Expiry is { } exp && exp - now < ttl)
                    {
                        ttl = exp - now; // never past the token's exp, whoever vouched for it
                    }
                    // Cached with system:authenticated already added, so a cache hit allocates no new UserInfo.
                    var user = result.User!.WithAuthenticatedGroup();
                    Cache.Set(digest, new CachedTokenResult(true, user, authenticator.Name, null, result.AuditAnnotations), ttl);
                    Digests.Remember(request.Token, digest);
                    return new TokenOutcome(user, authenticator.Name, null, result.AuditAnnotations);
                case AuthenticationOutcome.Failure:
                    (errors ??= []).Add(result.Error ?? authenticator.Name + ": rejected");
                    break;
            }
            if (result.CacheFor < negativeTtl)
            {
                negativeTtl = result.CacheFor;
            }
        }
        var error = errors is null ? "invalid bearer token"
            : errors.Count == 1 ? "invalid bearer token: " + errors[0]
            : "invalid bearer token: [" + string.Join(", ", errors) + "]";
        Cache.Set(digest, new CachedTokenResult(false, null, "", error, null), negativeTtl);
        return new TokenOutcome(null, "", error, null);
    }

    /// <summary>
    /// kube-apiserver's bearer parsing: trim, split on single spaces into at most 3 parts, scheme <c>bearer</c> in any
    /// case, token = second part. <c>Bearer  x</c> (empty second part) is ignored with a warning; other schemes
    /// (<c>Basic</c>, removed from Kubernetes in 1.19) yield no credential, so the request is anonymous when anonymous is
    /// allowed for its path and 401 otherwise, exactly as kube-apiserver.
    /// </summary>
    public static string? ParseBearerToken(string header, out string? warning)
    {
        var credential = ParseBearer(header, out warning);
        return credential.IsPresent ? credential.Materialize() : null;
    }

    private static Credential ParseBearer(string header, out string? warning)
    {
        warning = null;
        var start = 0;
        var end = header.Length;
        while (start < end && char.IsWhiteSpace(header[start]))
        {
            start++;
        }
        while (end > start && char.IsWhiteSpace(header[end - 1]))
        {
            end--;
        }
        var value = header.AsSpan(start, end - start);
        var space = value.IndexOf(' ');
        if (space < 0 || !value[..space].Equals("bearer", StringComparison.OrdinalIgnoreCase))
        {
            return default;
        }
        var rest = value[(space + 1)..];
        var next = rest.IndexOf(' ');
        var length = next < 0 ? rest.Length : next;
        if (length == 0)
        {
            warning = ExtraSpaceWarning;
            return default;
        }
        return new Credential(header, start + space + 1, length);
    }

    /// <summary>
    /// Reads <c>base64url.bearer.authorization.k8s.io.&lt;token&gt;</c> from the subprotocol list and gives the list the
    /// gateway must forward (token entries removed, null when there were none). Errors are kube-apiserver's.
    /// </summary>
    public static string? ParseWebSocketProtocols(IReadOnlyList<string> headerValues, out string? token, out string? rewritten)
    {
        token = null;
        rewritten = null;
        var kept = new List<string>();
        var tokens = 0;
        string? encoded = null;
        foreach (var value in headerValues)
        {
            foreach (var raw in value.Split(','))
            {
                var protocol = raw.Trim();
                if (protocol.Length == 0)
                {
                    continue;
                }
                if (protocol.StartsWith(BearerWebSocketProtocolPrefix, StringComparison.Ordinal))
                {
                    tokens++;
                    encoded = protocol[BearerWebSocketProtocolPrefix.Length..];
                }
                else
                {
                    kept.Add(protocol);
                }
            }
        }
        if (tokens == 0)
        {
            return null;
        }
        rewritten = string.Join(", ", kept);
        if (tokens > 1)
        {
            return "multiple base64.bearer.authorization tokens specified";
        }
        if (encoded!.Length == 0 || !Base64Url.IsValid(encoded))
        {
            return "invalid base64.bearer.authorization token encoding";
        }
        string decoded;
        try
        {
            decoded = new UTF8Encoding(false, true).GetString(Base64Url.DecodeFromChars(encoded));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            return "invalid base64.bearer.authorization token encoding";
        }
        if (decoded.Length == 0)
        {
            return "invalid base64.bearer.authorization token";
        }
        if (kept.Count == 0)
        {
            return "missing additional subprotocol";
        }
        token = decoded;
        return null;
    }

    private static ChainResult Accept(UserInfo user, string authenticator, IReadOnlyDictionary<string, string>? annotations,
        List<string>? warnings, TokenDigest? digest, string? rewritten)
    {
        if (IdentityValidator.Validate(user) is { } problem)
        {
            // Every authenticated result passes here: the backstop behind the per-authenticator checks above, so no
            // present or future authenticator can hand an unforwardable identity to the gateway.
            return Reject(authenticator + ": " + problem, isError: true, warnings, digest, rewritten);
        }
        return new ChainResult
        {
            Authenticated = true,
            User = user.WithAuthenticatedGroup(),
            Authenticator = authenticator,
            AuditAnnotations = annotations ?? ChainResult.NoAnnotations,
            Warnings = (IReadOnlyList<string>?)warnings ?? [],
            TokenDigest = digest,
            RewrittenWebSocketProtocol = rewritten,
        };
    }

    private static ChainResult Reject(string reason, bool isError, List<string>? warnings, TokenDigest? digest, string? rewritten) => new()
    {
        Authenticated = false,
        FailureReason = reason,
        IsError = isError,
        Warnings = (IReadOnlyList<string>?)warnings ?? [],
        TokenDigest = digest,
        RewrittenWebSocketProtocol = rewritten,
    };

    public void Dispose()
    {
        foreach (var authenticator in _tokenAuthenticators)
        {
            (authenticator as IDisposable)?.Dispose();
        }
    }
}
