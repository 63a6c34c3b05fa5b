// A real OpenID provider (npm oidc-provider) for the authentication tests.
//
//   PORT=0 CERT_FILE=server.crt KEY_FILE=server.key node provider.mjs
//
// Serves HTTPS on 127.0.0.1 with the given certificate (kube-apiserver accepts only https issuers, so the tests run
// the provider with a test CA and configure the gateway's oidc.caFile with it). Prints "LISTENING <port>" once ready.
// Client "portcullis-test" / "secret" gets JWT access tokens by client_credentials (resource indicators): aud is the
// requested resource (default https://portcullis.test), sub the client id, plus groups and email claims.
// POST /admin/rotate swaps in a provider with a fresh signing key (new kid, old key gone from /jwks): key rotation
// without restarting the issuer URL. GET /admin/kid tells the current kid. POST /admin/ttl?seconds=N sets the lifetime of
// the access tokens issued from then on (default 600), so that a test can have one expire.
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? 0);
const tls = { cert: readFileSync(process.env.CERT_FILE), key: readFileSync(process.env.KEY_FILE) };
const defaultAudience = process.env.AUDIENCE ?? 'https://portcullis.test';
let issuer = '';
let generation = 0;
let current = null;
let currentKid = '';
let accessTokenTtl = 600;

function makeProvider() {
  generation += 1;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  currentKid = `k${generation}-${randomUUID().slice(0, 8)}`;
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: currentKid, use: 'sig', alg: 'RS256' };
  const provider = new Provider(issuer, {
    jwks: { keys: [jwk] },
    clients: [{
      client_id: 'portcullis-test', client_secret: 'secret', grant_types: ['client_credentials'],
      redirect_uris: [], response_types: [],
    }],
    ttl: { ClientCredentials: () => accessTokenTtl },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => defaultAudience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator) => ({
          scope: 'api', audience: resourceIndicator, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => ({
      sub: token.clientId, groups: ['dev-team', 'auditors'], email: 'robot@example.com', email_verified: true,
    }),
  });
  provider.proxy = false;
  return provider;
}

const server = createServer(tls, (req, res) => {
  if (req.url === '/admin/rotate' && req.method === 'POST') {
    current = makeProvider().callback();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: currentKid }));
    return;
  }
  if (req.url.startsWith('/admin/ttl?seconds=') && req.method === 'POST') {
    const seconds = Number(req.url.slice('/admin/ttl?seconds='.length));
    if (!Number.isSafeInteger(seconds) || seconds < 1) {
      res.writeHead(400);
      res.end();
      return;
    }
    accessTokenTtl = seconds;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ seconds }));
    return;
  }
  if (req.url === '/admin/kid') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: currentKid }));
    return;
  }
  current(req, res);
});

server.listen(port, '127.0.0.1', () => {
  issuer = `https://127.0.0.1:${server.address().port}`;
  current = makeProvider().callback();
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});

// Stop with the test: when stdin closes (the parent died or closed it), exit.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
