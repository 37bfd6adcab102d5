// The test OpenID Provider of the end-to-end tests: panva's `oidc-provider` (the certified provider
// Logto is built on) with one public client, `yew-session`, one confidential client,
// `yew-session-bff` (session-api's backend-for-frontend mode: client_secret_basic, redirect URI
// `<origin>/api/bff/callback`, refresh tokens rotated on every use like the public client's), and
// beside it, in the same process, a
// small resource server that accepts the provider's opaque access tokens on the tutorial's
// `/api/test/*` paths. Everything listens on 127.0.0.1.
//
//   node e2e/oidc/provider.mjs --port 9000 --api-port 9001 --origin http://127.0.0.1:8080 \
//     [--origin URL ...] [--access-ttl 5] [--refresh-ttl 3600] [--id-token-ttl 3600] \
//     [--session-ttl 86400] [--grant-ttl 86400] [--bff-client-secret SECRET]
//
// Every option can also come from the environment: OIDC_PORT, OIDC_API_PORT, OIDC_ORIGINS
// (comma-separated), OIDC_ACCESS_TTL, OIDC_REFRESH_TTL, OIDC_ID_TOKEN_TTL, OIDC_SESSION_TTL,
// OIDC_GRANT_TTL (seconds), OIDC_BFF_CLIENT_SECRET. Prints one line `ready <issuer> <api-url>` when both listen.
//
// The provider keeps its defaults wherever they matter to a browser client: PKCE S256 required,
// refresh tokens rotated on every use with no grace (a second use of a used token revokes the
// grant), opaque access tokens, CORS only for the origins of the client's redirect URIs. What
// differs from a bare `new Provider()`: the development login form (any login, any password) and
// no consent screen for this first-party client; refresh tokens for it without prompt=consent;
// the profile claims (email and Keycloak-style `realm_access.roles`) in the ID token.
//
// Test controls on the resource server's port: GET /__stats, POST /__reset, POST /__fail.

import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';
// The provider's own in-memory adapter (deep import: the version is pinned in package-lock.json),
// given an unbounded store below instead of its default 1000-entry LRU.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

// ---- options ------------------------------------------------------------------------------

const env = process.env;
const { values: opt } = parseArgs({
  options: {
    port: { type: 'string', default: env.OIDC_PORT ?? '9000' },
    'api-port': { type: 'string', default: env.OIDC_API_PORT ?? '9001' },
    origin: { type: 'string', multiple: true, default: (env.OIDC_ORIGINS ?? 'http://127.0.0.1:8080').split(',') },
    'access-ttl': { type: 'string', default: env.OIDC_ACCESS_TTL ?? '5' },
    'refresh-ttl': { type: 'string', default: env.OIDC_REFRESH_TTL ?? '3600' },
    'id-token-ttl': { type: 'string', default: env.OIDC_ID_TOKEN_TTL ?? '3600' },
    'session-ttl': { type: 'string', default: env.OIDC_SESSION_TTL ?? '86400' },
    'grant-ttl': { type: 'string', default: env.OIDC_GRANT_TTL ?? '86400' },
    'bff-client-secret': { type: 'string', default: env.OIDC_BFF_CLIENT_SECRET ?? 'yew-session-bff-test-secret' },
  },
  strict: true,
});

function seconds(name) {
  const n = Number(opt[name]);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`provider.mjs: --${name} must be a whole number of seconds > 0, got '${opt[name]}'`);
    process.exit(2);
  }
  return n;
}

const port = seconds('port');
const apiPort = seconds('api-port');
const ttl = {
  access: seconds('access-ttl'),
  refresh: seconds('refresh-ttl'),
  idToken: seconds('id-token-ttl'),
  session: seconds('session-ttl'),
  grant: seconds('grant-ttl'),
};
const origins = opt.origin.map((o) => {
  const u = URL.parse(o);
  if (!u || u.origin !== o.replace(/\/$/, '')) {
    console.error(`provider.mjs: --origin must be an origin like http://127.0.0.1:8080, got '${o}'`);
    process.exit(2);
  }
  return u.origin;
});

const issuer = `http://127.0.0.1:${port}`;
const apiUrl = `http://127.0.0.1:${apiPort}`;
const CLIENT_ID = 'yew-session';
const BFF_CLIENT_ID = 'yew-session-bff';
// The first-party clients: no consent screen, offline tokens without prompt=consent.
const FIRST_PARTY = [CLIENT_ID, BFF_CLIENT_ID];

// ---- accounts -----------------------------------------------------------------------------

/** The roles of a login, as the tutorial's API spells them. */
function rolesOf(login) {
  const roles = ['ROLE_USER'];
  if (login.startsWith('mod')) roles.push('ROLE_MODERATOR');
  if (login.startsWith('admin')) roles.push('ROLE_ADMIN');
  return roles;
}

/** Any login id is an account (devInteractions accepts any password). */
function account(login) {
  return {
    accountId: login,
    async claims() {
      return {
        sub: login,
        preferred_username: login,
        name: `Test user ${login}`,
        email: `${login}@example.test`,
        email_verified: true,
        realm_access: { roles: rolesOf(login) },
      };
    },
  };
}

// ---- the provider -------------------------------------------------------------------------

// The store of the provider's memory adapter. Its default is an LRU of 1000 entries, which a long
// session (two tokens per refresh, plus the consumed ones until they expire) or a benchmark fills:
// an evicted grant would then look like a revocation. Same semantics, no size limit; expired
// entries are swept once a minute.
class TtlStore {
  #map = new Map();

  get(key) {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (e.expiry !== undefined && e.expiry <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key, value, { maxAge } = {}) {
    const expiry = typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : undefined;
    this.#map.set(key, { value, expiry });
    return this;
  }

  has(key) {
    return this.get(key) !== undefined;
  }

  delete(key) {
    return this.#map.delete(key);
  }

  sweep() {
    for (const key of [...this.#map.keys()]) this.get(key);
  }
}
const store = new TtlStore();
setInterval(() => store.sweep(), 60_000).unref();

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_name: 'yew-session (test)',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: origins.map((o) => `${o}/callback`),
      post_logout_redirect_uris: origins.flatMap((o) => [`${o}/login`, `${o}/`]),
    },
    {
      client_id: BFF_CLIENT_ID,
      client_secret: opt['bff-client-secret'],
      client_name: 'yew-session BFF (test)',
      application_type: 'web',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: origins.map((o) => `${o}/api/bff/callback`),
      post_logout_redirect_uris: origins.flatMap((o) => [`${o}/login`, `${o}/`]),
    },
  ],
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  // `realm_access` and `email` ride on the profile scope so that "openid profile offline_access"
  // brings them; conformIdTokenClaims: false puts the scope's claims in the ID token itself (by
  // default only userinfo would carry them when an access token is issued).
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'email', 'email_verified', 'realm_access'],
    email: ['email', 'email_verified'],
  },
  conformIdTokenClaims: false,
  findAccount: async (_ctx, sub) => account(sub),
  // A first-party client: no consent screen. The grant the consent prompt would create is
  // created here with what was asked for, so only the login form is shown.
  loadExistingGrant: async (ctx) => {
    const { client, session, params } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    const found = grantId && (await ctx.oidc.provider.Grant.find(grantId));
    const existing = found?.accountId === session.accountId ? found : undefined;
    const grant = existing || new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    if (FIRST_PARTY.includes(client.clientId)) {
      if (params.scope) grant.addOIDCScope(params.scope);
      if (params.claims) grant.addOIDCClaims(Object.keys(JSON.parse(params.claims).id_token ?? {}));
      await grant.save();
    }
    return grant;
  },
  // Refresh tokens for this client whenever it may use the refresh_token grant: by default only
  // with offline_access, which the provider keeps only with prompt=consent (see
  // expiresWithSession below), and the app should not have to force a consent screen.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: ttl.access,
    AuthorizationCode: 60,
    IdToken: ttl.idToken,
    Interaction: 600,
    Session: ttl.session,
    Grant: ttl.grant,
    // The provider's own rule for a public browser client, with our lifetime: a rotated refresh
    // token keeps what was left of the one it replaces, so --refresh-ttl is an absolute lifetime
    // from sign-in however often the app refreshes.
    RefreshToken: (ctx, token, client) => {
      if (
        ctx?.oidc?.entities.RotatedRefreshToken
        && (client.clientId === BFF_CLIENT_ID
          || (client.applicationType === 'web'
            && client.clientAuthMethod === 'none'
            && !token.isSenderConstrained()))
      ) {
        return ctx.oidc.entities.RotatedRefreshToken.remainingTTL;
      }
      return ttl.refresh;
    },
  },
  // The provider drops offline_access from any authorization request without prompt=consent
  // (OpenID Connect Core 11), and tokens without offline_access are bound to its login session:
  // they die with it, and RP-initiated logout revokes their grant. This first-party client gets
  // the offline behaviour without prompt=consent: its tokens outlive the login session, so
  // signing out must revoke the refresh token at the revocation endpoint, as with any provider
  // that grants offline_access.
  expiresWithSession: async (ctx) => !FIRST_PARTY.includes(ctx.oidc.client?.clientId),
  // The provider's default rotation rule, plus: the BFF client's refresh tokens rotate on every
  // use too (by default a confidential client's rotate only near their expiry), so the BFF's
  // single-flight refresh is tested against the strictest provider — rotation with no grace.
  rotateRefreshToken: (ctx) => {
    const { RefreshToken: refreshToken, Client: client } = ctx.oidc.entities;
    if (client.clientId === BFF_CLIENT_ID) return true;
    if (refreshToken.totalLifetime() >= 365.25 * 24 * 60 * 60) return false;
    if (client.clientAuthMethod === 'none' && !refreshToken.isSenderConstrained()) return true;
    return refreshToken.ttlPercentagePassed() >= 70;
  },
  // Stored entries outlive their expiry by 60 s (validity is the provider's check, unchanged), so
  // the resource server can still tell an expired access token from an unknown one.
  adapter: (model) => new MemoryAdapter(model, store, 60),
  cookies: { keys: ['yew-session-e2e-test-cookie-key'] },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    userinfo: { enabled: true },
  },
});

// ---- what happened (GET /__stats) -----------------------------------------------------------

function freshStats() {
  return {
    // token endpoint requests: { <grant_type>: { <outcome>: n } }; outcome = "ok" or the error code
    token: {},
    token_requests: 0,
    invalid_grant: 0,
    grants_revoked: 0,
    revocations_ok: 0,
    end_session_ok: 0,
    userinfo_ok: 0,
    injected_failures: 0,
    api: { ok: 0, unauthorized: 0, forbidden: 0 },
    // every access, refresh and ID token issued to the BFF client (yew-session-bff), newest
    // last, at most 1000: a test of the BFF mode looks for them where a script could read them
    issued_bff: [],
    // last 20 errors of any endpoint: { at, route, error, description, detail }
    errors: [],
  };
}
let stats = freshStats();
let failMode = null; // null | "503" | "429" | "drop"

/** One line of the log the Rust harness prints when a test fails. */
function log(line) {
  console.log(`${new Date().toISOString()} ${line}`);
}

function noteError(route, err) {
  stats.errors.push({
    at: new Date().toISOString(),
    route,
    error: err.error ?? err.name ?? 'error',
    description: err.error_description ?? err.message,
    detail: err.error_detail,
  });
  if (stats.errors.length > 20) stats.errors.shift();
  log(`${route} error ${err.error ?? err.name}: ${err.error_description ?? err.message}${err.error_detail ? ` (${err.error_detail})` : ''}`);
}

provider.on('grant.error', (_ctx, err) => {
  if (err.error === 'invalid_grant') stats.invalid_grant += 1;
  noteError('token', err);
});
provider.on('grant.revoked', (_ctx, grantId) => {
  stats.grants_revoked += 1;
  log(`grant revoked ${grantId}`);
});
provider.on('end_session.success', () => {
  stats.end_session_ok += 1;
  log('end_session -> success');
});
for (const event of ['authorization.error', 'revocation.error', 'userinfo.error', 'end_session.error', 'server_error']) {
  provider.on(event, (_ctx, err) => noteError(event.replace(/\.error$/, ''), err));
}

const TOKEN_PATH = '/token'; // the provider's default route

provider.use(async (ctx, next) => {
  // Transient failures of the token endpoint on demand (never for the CORS preflight, so the
  // browser sees the status, as behind a real load balancer that answers for the provider).
  if (failMode && ctx.method === 'POST' && ctx.path === TOKEN_PATH) {
    stats.injected_failures += 1;
    log(`token -> injected ${failMode}`);
    if (failMode === 'drop') {
      ctx.respond = false;
      ctx.req.socket.destroy();
      return;
    }
    const origin = ctx.get('Origin');
    if (origins.includes(origin)) {
      ctx.set('Access-Control-Allow-Origin', origin);
      ctx.set('Access-Control-Expose-Headers', 'Retry-After');
      ctx.vary('Origin');
    }
    ctx.status = Number(failMode);
    if (failMode === '429') ctx.set('Retry-After', '1');
    ctx.body = { error: failMode === '429' ? 'slow_down' : 'temporarily_unavailable', error_description: `injected ${failMode}` };
    return;
  }

  await next();

  const route = ctx.oidc?.route;
  if (route === 'token' && ctx.method === 'POST') {
    const grantType = ctx.oidc.params?.grant_type ?? String(ctx.request.body?.grant_type ?? 'unknown');
    const outcome = ctx.status === 200 ? 'ok' : (ctx.body?.error ?? String(ctx.status));
    stats.token_requests += 1;
    stats.token[grantType] ??= {};
    stats.token[grantType][outcome] = (stats.token[grantType][outcome] ?? 0) + 1;
    log(`token ${grantType} -> ${ctx.status} ${outcome}${ctx.get('Origin') ? ` (origin ${ctx.get('Origin')})` : ''}`);
    if (ctx.status === 200 && ctx.oidc.client?.clientId === BFF_CLIENT_ID && ctx.body) {
      for (const name of ['access_token', 'refresh_token', 'id_token']) {
        if (typeof ctx.body[name] === 'string') stats.issued_bff.push(ctx.body[name]);
      }
      stats.issued_bff.splice(0, Math.max(0, stats.issued_bff.length - 1000));
    }
  } else if (route === 'revocation' && ctx.method === 'POST' && ctx.status === 200) {
    stats.revocations_ok += 1;
    log('revocation -> 200');
  } else if (route === 'userinfo' && ctx.status === 200) {
    stats.userinfo_ok += 1;
  }
});

// ---- the resource server --------------------------------------------------------------------

// session-api's answers (api-types' `messages`), so the app's boards read the same.
const MSG = {
  PUBLIC: 'Public Content.',
  USER: 'User Content.',
  MOD: 'Moderator Content.',
  ADMIN: 'Admin Content.',
  NO_TOKEN: 'No token provided!',
  EXPIRED: 'Unauthorized! Access Token was expired!',
  UNAUTHORIZED: 'Unauthorized!',
  REQUIRE_MOD: 'Require Moderator Role!',
  REQUIRE_ADMIN: 'Require Admin Role!',
};

function send(req, res, status, body, headers = {}) {
  const origin = req.headers.origin;
  if (origin && origins.includes(origin)) {
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Expose-Headers', 'Date, Retry-After, WWW-Authenticate');
  }
  res.setHeader('Vary', 'Origin');
  res.setHeader('Cache-Control', 'no-store');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (typeof body === 'string') {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.writeHead(status).end(body);
  } else if (body === undefined) {
    res.writeHead(status).end();
  } else {
    res.setHeader('Content-Type', 'application/json');
    res.writeHead(status).end(JSON.stringify(body));
  }
}

function unauthorized(req, res, message, error) {
  stats.api.unauthorized += 1;
  const challenge = error ? `Bearer realm="${apiUrl}", error="${error}"` : `Bearer realm="${apiUrl}"`;
  send(req, res, 401, { message }, { 'WWW-Authenticate': challenge });
}

/** The roles of the bearer's account, or `null` when an answer (401) was sent. */
async function authenticate(req, res) {
  const auth = req.headers.authorization ?? '';
  const [scheme, token, extra] = auth.trim().split(/\s+/);
  if (!auth.trim()) {
    unauthorized(req, res, MSG.NO_TOKEN);
    return null;
  }
  if (scheme.toLowerCase() !== 'bearer' || !token || extra !== undefined) {
    unauthorized(req, res, MSG.UNAUTHORIZED, 'invalid_request');
    return null;
  }
  const at = await provider.AccessToken.find(token, { ignoreExpiration: true }).catch(() => undefined);
  if (!at) {
    unauthorized(req, res, MSG.UNAUTHORIZED, 'invalid_token');
    return null;
  }
  if (at.isExpired) {
    unauthorized(req, res, MSG.EXPIRED, 'invalid_token');
    return null;
  }
  return rolesOf(at.accountId);
}

async function readBody(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

async function handle(req, res) {
  const { pathname } = new URL(req.url, apiUrl);
  if (req.method === 'OPTIONS') {
    const origin = req.headers.origin;
    const headers = origin && origins.includes(origin)
      ? {
        'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
        'Access-Control-Allow-Headers': 'authorization, content-type',
        'Access-Control-Max-Age': '600',
      }
      : {};
    return send(req, res, 204, undefined, headers);
  }

  // test controls
  if (pathname === '/__stats' && req.method === 'GET') {
    return send(req, res, 200, { ...stats, fail: failMode });
  }
  if (pathname === '/__reset' && req.method === 'POST') {
    stats = freshStats();
    log("__reset");
    failMode = null;
    return send(req, res, 200, { ok: true });
  }
  if (pathname === '/__fail' && req.method === 'POST') {
    let mode;
    try {
      mode = JSON.parse((await readBody(req)) || '{}').token ?? null;
    } catch {
      return send(req, res, 400, { message: 'body must be JSON like {"token": "503"}' });
    }
    if (![null, '503', '429', 'drop'].includes(mode)) {
      return send(req, res, 400, { message: 'token must be "503", "429", "drop" or null' });
    }
    failMode = mode;
    log(`__fail token=${mode}`);
    return send(req, res, 200, { ok: true, fail: failMode });
  }

  // the tutorial's content
  if (req.method !== 'GET') return send(req, res, 404, { message: 'Not found' });
  const need = {
    '/api/test/user': [null, MSG.USER],
    '/api/test/mod': ['ROLE_MODERATOR', MSG.MOD, MSG.REQUIRE_MOD],
    '/api/test/admin': ['ROLE_ADMIN', MSG.ADMIN, MSG.REQUIRE_ADMIN],
  }[pathname];
  if (pathname === '/api/test/all') {
    stats.api.ok += 1;
    return send(req, res, 200, MSG.PUBLIC);
  }
  if (!need) return send(req, res, 404, { message: 'Not found' });
  const roles = await authenticate(req, res);
  if (!roles) return undefined;
  const [role, content, refusal] = need;
  if (role && !roles.includes(role)) {
    stats.api.forbidden += 1;
    return send(req, res, 403, { message: refusal });
  }
  stats.api.ok += 1;
  return send(req, res, 200, content);
}

const api = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('resource server error', err);
    if (!res.headersSent) send(req, res, 500, { message: 'Internal server error.' });
  });
});

// ---- start --------------------------------------------------------------------------------

function listen(server, p) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, '127.0.0.1', () => resolve());
  });
}

try {
  const op = provider.listen(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    op.once('listening', resolve);
    op.once('error', reject);
  });
  await listen(api, apiPort);
} catch (err) {
  console.error(`provider.mjs: could not listen: ${err.message}`);
  process.exit(1);
}
console.log(`ready ${issuer} ${apiUrl}`);

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
