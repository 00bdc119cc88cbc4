// A real OpenID provider for Portcullis integration tests. TEST ONLY.
//
// Starts `oidc-provider` on 127.0.0.1:0 and prints one JSON line on stdout:
//   {"issuer":"http://127.0.0.1:PORT"}
// Access tokens are JWTs minted by the provider's own client-credentials grant
// (features.clientCredentials + features.resourceIndicators). `agent-1` gets
// RS256 tokens, `agent-2` gets ES256 tokens; both carry `groups: ["agents"]`.
//
// Test control endpoints on the same port (never expose this in production):
//   POST /_test/rotate  replace the signing keys with fresh ones (old private keys are kept)
//   POST /_test/sign    {"header":{...},"claims":{...},"key":"rs"|"es"|"old-rs"|"old-es"}
//                       -> {"token":"..."}; header.kid/alg default to the key's, both may be
//                       overridden to forge. alg "none" yields an unsigned token; an HS* alg
//                       is HMAC keyed with the chosen key's PUBLIC key PEM (algorithm confusion).
//   GET  /_test/public  the current public JWKS, plus the public keys as PEM under "pem".
//   GET  /_test/health  200 "ok"
//
// Env: IDP_CLIENT_SECRET (secret of agent-1 and agent-2, default below), IDP_HOST (127.0.0.1).

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

// stdout carries exactly one line (the issuer JSON); route the provider's notices to stderr.
console.log = console.error;
console.info = console.error;

const HOST = process.env.IDP_HOST || '127.0.0.1';
const CLIENT_SECRET = process.env.IDP_CLIENT_SECRET || 'portcullis-test-secret-0123456789';
const GROUPS = ['agents'];
const MAX_BODY = 1024 * 1024;

// ---------------------------------------------------------------- keys

let generation = 0;

async function generateKeys() {
  generation += 1;
  const stamp = `${generation}-${crypto.randomBytes(4).toString('hex')}`;
  const rsa = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const ec = await jose.generateKeyPair('ES256', { crv: 'P-256', extractable: true });
  return {
    rs: await describe(rsa, 'RS256', `rs-${stamp}`),
    es: await describe(ec, 'ES256', `es-${stamp}`),
  };
}

async function describe(pair, alg, kid) {
  const privateJwk = { ...(await jose.exportJWK(pair.privateKey)), kid, alg, use: 'sig' };
  const publicJwk = { ...(await jose.exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  const publicPem = await jose.exportSPKI(pair.publicKey);
  return {
    alg, kid, privateKey: pair.privateKey, publicKey: pair.publicKey, privateJwk, publicJwk, publicPem,
  };
}

let current = await generateKeys();
let previous = null; // keys rotated out by the last /_test/rotate

function keyByName(name) {
  switch (name ?? 'rs') {
    case 'rs': return current.rs;
    case 'es': return current.es;
    case 'old-rs': return previous?.rs ?? null;
    case 'old-es': return previous?.es ?? null;
    default: return null;
  }
}

// ---------------------------------------------------------------- provider

const clients = [
  {
    client_id: 'agent-1',
    client_secret: CLIENT_SECRET,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'agent-2',
    client_secret: CLIENT_SECRET,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [current.rs.privateJwk, current.es.privateJwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => 'urn:portcullis',
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, _resourceIndicator, client) => ({
          scope: 'read',
          audience: 'portcullis',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: client?.clientId === 'agent-2' ? 'ES256' : 'RS256' } },
        }),
      },
    },
    extraTokenClaims: async () => ({ groups: GROUPS }),
    ttl: {
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256'],
    },
  });
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`idp server_error: ${err?.stack ?? err}\n`);
  });
  return provider;
}

// ---------------------------------------------------------------- test endpoints

function b64url(input) {
  return Buffer.from(input).toString('base64url');
}

async function signToken({ header = {}, claims = {}, key: keyName } = {}) {
  const key = keyByName(keyName);
  if (!key) {
    throw Object.assign(new Error(`unknown key ${JSON.stringify(keyName)} (rs, es, old-rs, old-es; old-* only after a rotation)`), { status: 400 });
  }
  const protectedHeader = { alg: key.alg, kid: key.kid, typ: 'JWT', ...header };
  // Allow a test to drop a default by setting it to null.
  for (const [k, v] of Object.entries(protectedHeader)) if (v === null) delete protectedHeader[k];
  const { alg } = protectedHeader;
  const payload = Buffer.from(JSON.stringify(claims));

  if (alg === 'none' || String(alg).toLowerCase() === 'none') {
    return `${b64url(JSON.stringify(protectedHeader))}.${b64url(payload)}.`;
  }
  if (typeof alg === 'string' && alg.startsWith('HS')) {
    // Algorithm confusion: HMAC keyed with the public key PEM an attacker can download.
    const bits = alg.slice(2);
    const signingInput = `${b64url(JSON.stringify(protectedHeader))}.${b64url(payload)}`;
    const mac = crypto.createHmac(`sha${bits}`, Buffer.from(key.publicPem)).update(signingInput).digest();
    return `${signingInput}.${mac.toString('base64url')}`;
  }
  if (alg !== key.alg) {
    throw Object.assign(new Error(`alg ${alg} cannot be produced with key ${keyName} (${key.alg})`), { status: 400 });
  }
  const crit = Array.isArray(protectedHeader.crit)
    ? Object.fromEntries(protectedHeader.crit.map((name) => [name, true]))
    : undefined;
  return new jose.CompactSign(payload)
    .setProtectedHeader(protectedHeader)
    .sign(key.privateKey, crit ? { crit } : undefined);
}

function publicJwks() {
  return {
    keys: [current.rs.publicJwk, current.es.publicJwk],
    pem: { rs: current.rs.publicPem, es: current.es.publicPem },
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function handleTest(req, res, path) {
  if (req.method === 'POST' && path === '/_test/rotate') {
    previous = current;
    current = await generateKeys();
    handler = makeProvider(issuer).callback();
    return sendJson(res, 200, { rotated: true, kids: [current.rs.kid, current.es.kid], old_kids: [previous.rs.kid, previous.es.kid] });
  }
  if (req.method === 'POST' && path === '/_test/sign') {
    const text = await readBody(req);
    let body;
    try {
      body = JSON.parse(text || '{}');
    } catch {
      return sendJson(res, 400, { error: 'body is not JSON' });
    }
    return sendJson(res, 200, { token: await signToken(body) });
  }
  if (req.method === 'GET' && path === '/_test/public') {
    return sendJson(res, 200, publicJwks());
  }
  if (req.method === 'GET' && path === '/_test/health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('ok');
  }
  return sendJson(res, 404, { error: `no test endpoint ${req.method} ${path}` });
}

// ---------------------------------------------------------------- server

let handler = null;
let issuer = null;

const server = http.createServer((req, res) => {
  const path = (req.url || '/').split('?')[0];
  if (path.startsWith('/_test/')) {
    handleTest(req, res, path).catch((err) => {
      if (!res.headersSent) sendJson(res, err.status || 500, { error: String(err?.message ?? err) });
      else res.destroy();
    });
    return;
  }
  if (!handler) {
    res.writeHead(503);
    res.end();
    return;
  }
  handler(req, res);
});

server.listen(0, HOST, () => {
  const { port } = server.address();
  issuer = `http://${HOST}:${port}`;
  handler = makeProvider(issuer).callback();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// The harness holds our stdin; when it goes away (test process died), exit too.
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
