/**
 * PostgreSQL or Redis becomes unreachable under a running server: every endpoint answers 503 with
 * `temporarily_unavailable` and a Retry-After (never a 500 or a hanging request), pages say to try again, nothing
 * half-written is left behind, and the server recovers by itself once the store is back. The stores sit behind
 * TCP relays that the tests cut.
 */
import * as oidc from 'openid-client';
import { adminApiIndicator } from '../../src/admin/index.js';
import { describeWithServers, postgresUrl, redisUrl } from '../support/environment.js';
import {
  PASSWORD,
  REDIRECT_URI,
  createServiceClient,
  createUser,
  createWebClient,
  discover,
  openLoginPage,
  signInAndRedeem,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type TcpProxy, startTcpProxy } from '../support/tcp-proxy.js';
import { type Page, UserAgent, parseForms } from '../support/user-agent.js';

const OPAQUE_API = 'https://legacy.example.test';
/** Well above what failing fast takes (a few reconnection attempts), well below knex's and pg's old waits. */
const FAILS_WITHIN_MS = 8_000;

let server: TestServer;
let pg: TcpProxy;
let redis: TcpProxy;

beforeAll(async () => {
  if (!postgresUrl || !redisUrl) return;
  pg = await startTcpProxy(postgresUrl);
  redis = await startTcpProxy(redisUrl);
  server = await startTestServer({ env: { DATABASE_URL: pg.url, REDIS_URL: redis.url } });
  await server.services.apis.create({ indicator: OPAQUE_API, name: 'Legacy', scopes: ['legacy'], accessTokenFormat: 'opaque' });
});
afterAll(async () => {
  if (!server) return;
  pg.restore();
  redis.restore();
  await server.close();
  await Promise.all([pg.close(), redis.close()]);
});

const basic = (clientId: string, secret: string) => ({
  authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
  'content-type': 'application/x-www-form-urlencoded',
});

/** A raw POST, for the status, headers and body an HTTP client sees. */
async function post(path: string, headers: Record<string, string>, body: string) {
  const started = performance.now();
  const response = await fetch(`${server.url}${path}`, { method: 'POST', headers, body });
  return { response, body: await response.json(), ms: performance.now() - started };
}

function expectOutageAnswer(answer: { response: Response; body: unknown; ms: number }) {
  expect(answer.response.status).toBe(503);
  expect(answer.response.headers.get('retry-after')).toBe('5');
  expect(answer.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.stringMatching(/try again/) });
  expect(answer.ms).toBeLessThan(FAILS_WITHIN_MS);
}

/** What openid-client throws for a 5xx: the response is its cause. */
function expectRefusedWith503(error: unknown) {
  expect(error).toBeInstanceOf(oidc.ClientError);
  expect((error as { cause?: Response }).cause?.status).toBe(503);
}

/** What a person sees: our error page, in our look and under our CSP, saying to try again. */
function expectOutagePage(page: Page | undefined) {
  expect(page?.status).toBe(503);
  expect(page?.headers.get('content-type')).toMatch(/^text\/html/);
  expect(page?.headers.get('retry-after')).toBe('5');
  expect(page?.headers.get('content-security-policy')).toContain("default-src 'self'");
  expect(page?.html).toContain('briefly unavailable');
  expect(page?.html).toContain('temporarily_unavailable');
}

async function waitUntilReady() {
  for (let attempt = 0; attempt < 100; attempt++) {
    if ((await fetch(`${server.url}/readyz`)).status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the server did not become ready again');
}

describeWithServers('a store outage', () => {
  test('Redis down: tokens, introspection, authorization and the login form answer 503, and all work again after', async () => {
    const service = await createServiceClient(server, { scope: 'legacy' });
    const web = await createWebClient(server, { firstParty: true });
    const user = await createUser(server);
    const rp = await discover(server, service.clientId, service.secret);
    const { access_token: issued } = await oidc.clientCredentialsGrant(rp, { resource: OPAQUE_API });
    const login = await openLoginPage(server, web.clientId);

    redis.cut();
    try {
      // A relying-party library reads an error body only from a 4xx; it hands the 503 itself to its caller.
      expectRefusedWith503(await oidc.clientCredentialsGrant(rp, { resource: OPAQUE_API }).catch((error: unknown) => error));

      const auth = basic(service.clientId, service.secret);
      expectOutageAnswer(await post('/token', auth, `grant_type=client_credentials&resource=${encodeURIComponent(OPAQUE_API)}`));
      expectOutageAnswer(await post('/token', auth, 'grant_type=client_credentials'));
      expectOutageAnswer(await post('/token/introspection', auth, `token=${issued}`));

      // The authorization endpoint sends the error back to the client, as RFC 6749 §4.1.2.1 says.
      const webRp = await discover(server, web.clientId, web.secret);
      const authorization = oidc.buildAuthorizationUrl(webRp, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        state: 'outage-state',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      const redirect = await fetch(authorization, { redirect: 'manual' });
      expect(redirect.status).toBe(303);
      const back = new URL(redirect.headers.get('location') ?? '');
      expect(`${back.origin}${back.pathname}`).toBe(REDIRECT_URI);
      expect(Object.fromEntries(back.searchParams)).toMatchObject({ error: 'temporarily_unavailable', state: 'outage-state', iss: server.issuer });

      // A person half-way through signing in gets a page that says to try again.
      const submitted = await login.agent.submit(login.page, login.form, { email: user.email, password: PASSWORD }, server.issuer);
      expect(submitted.page?.status).toBe(503);
      expect(submitted.page?.html).toContain('briefly unavailable');
      expect(submitted.page?.headers.get('retry-after')).toBe('5');

      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ checks: { redis: expect.stringMatching(/^failing/) } });
    } finally {
      redis.restore();
    }

    await waitUntilReady();
    const again = await oidc.clientCredentialsGrant(rp, { resource: OPAQUE_API });
    expect((await oidc.tokenIntrospection(rp, again.access_token)).active).toBe(true);
    expect((await oidc.tokenIntrospection(rp, issued)).active).toBe(true);
    const { tokens } = await signInAndRedeem(await discover(server, web.clientId, web.secret), user);
    expect(tokens.id_token).toBeDefined();
  }, 60_000);

  test('Redis down: a browser at the device and logout pages gets a page that says to try again, a script the JSON', async () => {
    const browser = new UserAgent();
    const { page: entry } = await browser.follow(`${server.url}/device`, server.issuer);
    const codeForm = parseForms(entry?.html ?? '').find((form) => form.action.split('?')[0]?.endsWith('/device'));
    if (!entry || !codeForm) throw new Error('no code form on /device');

    redis.cut();
    try {
      // The provider writes these pages, then cannot save the session they belong to.
      expectOutagePage((await browser.follow(`${server.url}/device`, server.issuer)).page);
      expectOutagePage((await browser.follow(`${server.url}/session/end`, server.issuer)).page);
      // A code typed in: the guard against guessing cannot count it, so nothing about the code is said.
      expectOutagePage((await browser.submit(entry, codeForm, { user_code: 'BCDF-GHJK' }, server.issuer)).page);
      // A script asking the same (no Accept, or JSON) gets what API clients get.
      for (const accept of [undefined, 'application/json']) {
        const started = performance.now();
        const response = await fetch(`${server.url}/device`, { headers: accept ? { accept } : {} });
        expectOutageAnswer({ response, body: await response.json(), ms: performance.now() - started });
      }
    } finally {
      redis.restore();
    }

    await waitUntilReady();
    const { page: again } = await browser.follow(`${server.url}/device`, server.issuer);
    expect(again?.status).toBe(200);
    expect(again?.html).toContain('Connect a device');
  }, 60_000);

  test('PostgreSQL down: client lookups, refresh and userinfo answer 503, cached clients still get tokens; the refresh token is intact after', async () => {
    const web = await createWebClient(server, { firstParty: true });
    const user = await createUser(server);
    const rp = await discover(server, web.clientId, web.secret);
    const { tokens } = await signInAndRedeem(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
    const refreshToken = tokens.refresh_token as string;
    // Registered now and never used, so no instance has it cached: its first request must read the database.
    const service = await createServiceClient(server);
    const known = await createServiceClient(server);
    const knownRp = await discover(server, known.clientId, known.secret);
    await oidc.clientCredentialsGrant(knownRp);
    const admin = await server.services.clients.create({ type: 'service', name: 'ops', scope: 'admin' });
    const adminRp = await discover(server, admin.client.clientId, admin.secret as string);
    const adminToken = (await oidc.clientCredentialsGrant(adminRp, { resource: adminApiIndicator(server.issuer) })).access_token;

    pg.cut();
    try {
      // The admin API, with a token it checks offline, answers as the endpoints do.
      const started = performance.now();
      const listing = await fetch(`${server.url}/admin/v1/clients`, { headers: { authorization: `Bearer ${adminToken}` } });
      expectOutageAnswer({ response: listing, body: await listing.json(), ms: performance.now() - started });
      expectOutageAnswer(await post('/token', basic(service.clientId, service.secret), 'grant_type=client_credentials'));
      // What needs no database keeps working: a service whose record is in the cache still gets its token.
      expect((await oidc.clientCredentialsGrant(knownRp)).access_token).toBeDefined();
      expect((await fetch(`${server.url}/jwks`)).status).toBe(200);
      expectRefusedWith503(await oidc.refreshTokenGrant(rp, refreshToken).catch((error: unknown) => error));
      expectOutageAnswer(await post('/token', basic(web.clientId, web.secret), `grant_type=refresh_token&refresh_token=${refreshToken}`));
      const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(userinfo.status).toBe(503);
      expect(await userinfo.json()).toMatchObject({ error: 'temporarily_unavailable' });
      const ready = await fetch(`${server.url}/readyz`);
      expect(await ready.json()).toMatchObject({ checks: { database: expect.stringMatching(/^failing/) } });
    } finally {
      pg.restore();
    }

    await waitUntilReady();
    // The refused rotation wrote nothing: the same refresh token still works, once.
    const rotated = await oidc.refreshTokenGrant(rp, refreshToken);
    expect(rotated.refresh_token).toBeDefined();
    expect(rotated.refresh_token).not.toBe(refreshToken);
    const service2 = await oidc.clientCredentialsGrant(await discover(server, service.clientId, service.secret));
    expect(service2.access_token).toBeDefined();
  }, 60_000);

  test('PostgreSQL silent mid-query (a partition, a moved address): 503 a moment after DATABASE_QUERY_TIMEOUT, then served again', async () => {
    // One pooled connection, so the silenced one is the one the next request is handed.
    const quick = await startTestServer({ instanceOf: server, env: { DATABASE_QUERY_TIMEOUT: '1', DATABASE_POOL_MAX: '1' } });
    try {
      const web = await createWebClient(quick, { firstParty: true });
      const user = await createUser(quick);
      const rp = await discover(quick, web.clientId, web.secret);
      const { tokens } = await signInAndRedeem(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
      const refreshToken = tokens.refresh_token as string;

      pg.silence(); // what is open stays open and carries nothing; new connections go through
      const started = performance.now();
      const refused = await fetch(`${quick.url}/token`, {
        method: 'POST',
        headers: basic(web.clientId, web.secret),
        body: `grant_type=refresh_token&refresh_token=${refreshToken}`,
      });
      expect(refused.status).toBe(503);
      expect(await refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
      // The 1 s limit and the 3 s margin for silence; without them it would wait for good.
      expect(performance.now() - started).toBeLessThan(FAILS_WITHIN_MS);

      // The lost connection was replaced, and the refused rotation wrote nothing. Asked of this instance: the
      // relying party's endpoints (from the shared issuer's discovery) lead to the first one, whose pooled
      // connections the relay silenced as well.
      const rotated = await fetch(`${quick.url}/token`, {
        method: 'POST',
        headers: basic(web.clientId, web.secret),
        body: `grant_type=refresh_token&refresh_token=${refreshToken}`,
      });
      expect(rotated.status).toBe(200);
      expect(((await rotated.json()) as { refresh_token: string }).refresh_token).not.toBe(refreshToken);
    } finally {
      await quick.close();
    }
  }, 60_000);

  test('PostgreSQL down for longer than the caches last: discovery still answers as it last did, and JWKS', async () => {
    // A second instance whose client cache lapses at once; the documents are cached for 5 s.
    const quick = await startTestServer({ instanceOf: server, env: { CLIENT_CACHE_TTL_MS: '200' } });
    const discovery = () => fetch(`${quick.url}/.well-known/openid-configuration`);
    try {
      const before = await (await discovery()).json();
      pg.cut();
      try {
        await new Promise((resolve) => setTimeout(resolve, 5_500));
        const during = await discovery();
        expect(during.status).toBe(200);
        expect(await during.json()).toEqual(before);
        expect((await fetch(`${quick.url}/jwks`)).status).toBe(200);
      } finally {
        pg.restore();
      }
    } finally {
      await quick.close();
    }
  }, 30_000);
});
