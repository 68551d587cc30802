/**
 * Brute-force limits beyond one account and the token endpoint, and what /metrics and the audit log show of them:
 * the per-IP sign-in limit (password spraying over many accounts), client-authentication limits at the
 * introspection and revocation endpoints (per client_id and per IP), and the counters for sign-ins, lockouts,
 * client-authentication failures, refresh-token reuse, store errors and the audit log's failed writes. The server sits "behind a proxy"
 * (PROXY=true), so each test speaks from client addresses of its own through X-Forwarded-For.
 */
import * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { describeWithServers, postgresUrl, redisUrl } from '../support/environment.js';
import {
  type Fixtures,
  PASSWORD,
  authorize,
  createServiceClient,
  createSpaClient,
  createUser,
  createWebClient,
  discover,
  loginFormOf,
  openLoginPage,
  signInAndRedeem,
} from '../support/relying-party.js';
import { scrapeMetrics as scrapeFrom } from '../support/metrics.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type TcpProxy, startTcpProxy } from '../support/tcp-proxy.js';
import { BrowserAt, type Page, type UserAgent } from '../support/user-agent.js';

/** Small limits: 3 wrong passwords per IP (5 per account), 2 failed client authentications per client, 10 per IP. */
const LIMITS = {
  PROXY: 'true',
  LOGIN_MAX_FAILURES: '5',
  LOGIN_MAX_FAILURES_PER_IP: '3',
  LOGIN_LOCK: '60',
  CLIENT_AUTH_MAX_FAILURES: '2',
  REFRESH_REUSE_GRACE: '0',
};

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: LIMITS });
});
afterAll(() => server.close());

const loginPageAt = (forwardedFor: string, clientId: string) => openLoginPage(server, clientId, new BrowserAt(forwardedFor));

async function tryPassword(agent: UserAgent, page: Page, email: string, password: string) {
  const result = await agent.submit(page, loginFormOf(page), { email, password }, server.issuer);
  return { ...result, alert: /role="alert">([^<]*)</.exec(result.page?.html ?? '')?.[1] ?? '' };
}

const WRONG_PASSWORD_ALERT = 'That email and password do not match an account.';
const LOCKED_ALERT = 'Too many failed sign-in attempts. Try again in 1 minute.';

const auditEvents = async (type: string) => {
  await server.services.audit.flush();
  return queryAuditEvents(server.services.db, { type, limit: 1000 });
};

/** Scrapes this file's server unless told otherwise (test/support/metrics.ts). */
const scrapeMetrics = (target: TestServer = server) => scrapeFrom(target);

describe('the per-IP sign-in limit (password spraying)', () => {
  test('wrong passwords spread over accounts lock the IP; a right password is then refused alike, while the accounts and other IPs sign in', async () => {
    const sprayer = '203.0.113.10';
    const web = await createWebClient(server, { firstParty: true });
    const sprayed = [await createUser(server), await createUser(server), await createUser(server), await createUser(server)];
    const metrics = await scrapeMetrics();

    // One wrong password per account: no account is near its own limit (5), but the IP reaches its (3) at the third.
    let { agent, page } = await loginPageAt(sprayer, web.clientId);
    for (const victim of sprayed.slice(0, 2)) {
      const result = await tryPassword(agent, page, victim.email, 'Summer2024!');
      expect(result.page?.status).toBe(400);
      expect(result.alert).toBe(WRONG_PASSWORD_ALERT);
      page = result.page as Page;
    }
    const locking = await tryPassword(agent, page, sprayed[2]!.email, 'Summer2024!');
    expect(locking.page?.status).toBe(429);
    expect(locking.alert).toBe(LOCKED_ALERT);
    expect(Number(locking.page?.headers.get('retry-after'))).toBeGreaterThan(0);

    // From the locked IP, an account never tried before is refused the same way with its right password as with a
    // wrong one: the answer says nothing about the password, nor whether the account exists.
    const fresh = await createUser(server);
    ({ agent, page } = await loginPageAt(sprayer, web.clientId));
    const right = await tryPassword(agent, page, fresh.email, PASSWORD);
    const wrong = await tryPassword(agent, page, fresh.email, 'Summer2024!');
    const unknown = await tryPassword(agent, page, 'nobody.at.all@example.test', 'Summer2024!');
    for (const answer of [right, wrong, unknown]) {
      expect(answer.redirectedTo).toBeUndefined();
      expect(answer.page?.status).toBe(429);
      expect(answer.alert).toBe(LOCKED_ALERT);
    }

    // Entries the client itself put before the proxy's are not trusted: prepending another address changes nothing.
    const spoofing = await loginPageAt(`198.51.100.77, ${sprayer}`, web.clientId);
    expect((await tryPassword(spoofing.agent, spoofing.page, fresh.email, PASSWORD)).page?.status).toBe(429);

    // The accounts were not locked: from another address each signs in with its right password.
    const rp = await discover(server, web.clientId, web.secret);
    for (const user of [sprayed[0]!, sprayed[3]!, fresh]) {
      const flow = await authorize(rp, user, { agent: new BrowserAt('203.0.113.11') });
      expect(flow.callbackUrl.searchParams.get('code')).toEqual(expect.any(String));
    }

    const grew = await metrics.since();
    expect(grew('authz_sign_ins_total{outcome="failure"}')).toBe(3);
    expect(grew('authz_lockouts_total{by="ip"}')).toBe(1);
    expect(grew('authz_lockouts_total{by="account"}')).toBe(0);
    expect(grew('authz_sign_ins_total{outcome="locked"}')).toBe(4);
    expect(grew('authz_sign_ins_total{outcome="success"}')).toBe(3);

    // The audit log names the lock, what was locked and from where; each refusal under it is recorded too.
    const locks = (await auditEvents('sign_in_locked')).filter((event) => event.ip === sprayer);
    expect(locks).toEqual([
      expect.objectContaining({ outcome: 'failure', detail: expect.objectContaining({ by: 'ip', email: sprayed[2]!.email, lockSeconds: 60 }) }),
    ]);
    const refusals = (await auditEvents('sign_in')).filter((event) => event.ip === sprayer && event.detail?.reason === 'locked');
    expect(refusals.map((event) => event.detail?.email).sort()).toEqual([fresh.email, fresh.email, fresh.email, 'nobody.at.all@example.test'].sort());
  });
});

describe('client authentication at introspection and revocation', () => {
  type Endpoint = '/token/introspection' | '/token/revocation' | '/token';
  const bodies: Record<Endpoint, Record<string, string>> = {
    '/token/introspection': { token: 'not-a-token' },
    '/token/revocation': { token: 'not-a-token' },
    '/token': { grant_type: 'client_credentials' },
  };

  /** A client's own request (HTTP Basic, or client_secret_post), arriving through the proxy from `from`. */
  function call(endpoint: Endpoint, from: string, client: { clientId: string; secret: string }, via: 'basic' | 'post' = 'basic') {
    const credentials: Record<string, string> = via === 'post' ? { client_id: client.clientId, client_secret: client.secret } : {};
    return fetch(`${server.url}${endpoint}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-forwarded-for': from,
        ...(via === 'basic' ? { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.secret}`).toString('base64')}` } : {}),
      },
      body: new URLSearchParams({ ...bodies[endpoint], ...credentials }),
    });
  }

  async function expectLockedOut(response: Response) {
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await response.json()).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/too many failed client authentications/) });
  }

  async function expectWrongSecret(response: Response) {
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'invalid_client' });
  }

  test('failures there count towards the client lock; the locked client is refused its right secret everywhere, from any IP', async () => {
    const service = await createServiceClient(server);
    const wrong = { ...service, secret: 'wrong-secret' };
    const from = '203.0.113.30';
    const metrics = await scrapeMetrics();

    await expectWrongSecret(await call('/token/introspection', from, wrong));
    // The second failure reaches CLIENT_AUTH_MAX_FAILURES (2) and locks the client.
    await expectWrongSecret(await call('/token/revocation', from, wrong, 'post'));

    for (const endpoint of ['/token/introspection', '/token/revocation', '/token'] as const) {
      for (const via of ['basic', 'post'] as const) await expectLockedOut(await call(endpoint, '203.0.113.31', service, via));
    }
    // Another client is not affected, from the same address.
    const other = await createServiceClient(server);
    expect((await call('/token/introspection', from, other)).status).toBe(200);

    const failures = (await auditEvents('client_auth_failed')).filter((event) => event.clientId === service.clientId);
    expect(failures.map((event) => event.detail?.endpoint).sort()).toEqual(['introspection', 'revocation']);
    expect(failures.every((event) => event.ip === from)).toBe(true);
    // The lock itself is audited: which client, from where, for how long, at which endpoint.
    const locks = (await auditEvents('client_auth_locked')).filter((event) => event.clientId === service.clientId);
    expect(locks).toEqual([
      expect.objectContaining({ outcome: 'failure', ip: from, detail: { by: 'client', lockSeconds: 60, endpoint: 'revocation' } }),
    ]);
    const grew = await metrics.since();
    expect(grew('authz_client_auth_failures_total')).toBe(2);
    expect(grew('authz_lockouts_total{by="client"}')).toBe(1);
    expect(grew('authz_lockouts_total{by="client_ip"}')).toBe(0);
  });

  test('failures spread over clients lock the IP at five times the per-client limit; the clients themselves stay usable', async () => {
    const from = '203.0.113.40';
    const clients = await Promise.all(Array.from({ length: 10 }, () => createServiceClient(server)));
    const metrics = await scrapeMetrics();

    // One failure for each of nine clients (none at its own limit of two): nine for the IP, one short of its ten.
    for (const [index, client] of clients.slice(0, 9).entries()) {
      await expectWrongSecret(await call(index % 2 ? '/token/revocation' : '/token/introspection', from, { ...client, secret: 'wrong-secret' }));
    }
    // The tenth locks the IP.
    await expectWrongSecret(await call('/token/revocation', from, { ...clients[9]!, secret: 'wrong-secret' }));

    // From that IP even a client with no failures at all is refused its secret, at every endpoint, however sent.
    const untouched = await createServiceClient(server);
    for (const endpoint of ['/token/introspection', '/token/revocation', '/token'] as const) {
      for (const via of ['basic', 'post'] as const) await expectLockedOut(await call(endpoint, from, untouched, via));
    }
    // A public client presents no secret to guess: an SPA behind the same address still reaches its grant.
    const spa = await createSpaClient(server);
    const exchange = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'not-a-refresh-token', client_id: spa.clientId }),
    });
    expect(exchange.status).toBe(400);
    expect(await exchange.json()).toMatchObject({ error: 'invalid_grant' });
    // From elsewhere, every client authenticates: none of them was locked.
    for (const client of clients) expect((await call('/token/introspection', '203.0.113.41', client)).status).toBe(200);

    const locks = (await auditEvents('client_auth_locked')).filter((event) => event.ip === from);
    expect(locks).toEqual([
      expect.objectContaining({ clientId: clients[9]!.clientId, detail: { by: 'ip', lockSeconds: 60, endpoint: 'revocation' } }),
    ]);
    const grew = await metrics.since();
    expect(grew('authz_client_auth_failures_total')).toBe(10);
    expect(grew('authz_lockouts_total{by="client_ip"}')).toBe(1);
    expect(grew('authz_lockouts_total{by="client"}')).toBe(0);
  });
});

describe('metrics and audit of stolen tokens', () => {
  test('a reused refresh token counts in authz_refresh_token_reuse_total{kind="detected"}', async () => {
    const user: Fixtures = await createUser(server);
    const web = await createWebClient(server, { firstParty: true });
    const rp = await discover(server, web.clientId, web.secret);
    const { tokens } = await signInAndRedeem(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
    const metrics = await scrapeMetrics();

    const first = tokens.refresh_token as string;
    await oidc.refreshTokenGrant(rp, first);
    await expect(oidc.refreshTokenGrant(rp, first)).rejects.toMatchObject({ error: 'invalid_grant' });

    const grew = await metrics.since();
    expect(grew('authz_refresh_token_reuse_total{kind="detected"}')).toBe(1);
    expect(grew('authz_refresh_token_reuse_total{kind="grace"}')).toBe(0);
    expect(grew(`authz_tokens_issued_total{grant_type="refresh_token",client_id="${web.clientId}"}`)).toBe(1);
    expect((await auditEvents('refresh_reuse_detected')).filter((event) => event.accountId === user.userId)).toHaveLength(1);
  });
});

describeWithServers('metrics of a store outage', () => {
  let outage: TestServer;
  let pg: TcpProxy;
  beforeAll(async () => {
    // Its own server, whose PostgreSQL connections go through a relay the test cuts.
    pg = await startTcpProxy(postgresUrl as string);
    outage = await startTestServer({ env: { DATABASE_URL: pg.url, REDIS_URL: redisUrl as string } });
  });
  afterAll(async () => {
    pg.restore();
    await outage.close();
    await pg.close();
  });

  test('a refresh while PostgreSQL is down counts in authz_store_errors_total by store and operation', async () => {
    const user = await createUser(outage);
    const web = await createWebClient(outage, { firstParty: true });
    const rp = await discover(outage, web.clientId, web.secret);
    const { tokens } = await signInAndRedeem(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
    const metrics = await scrapeMetrics(outage);

    pg.cut();
    try {
      const refused = await fetch(`${outage.url}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${web.clientId}:${web.secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string }),
      });
      expect(refused.status).toBe(503);
    } finally {
      pg.restore();
    }

    const grew = await metrics.since();
    expect(grew('authz_store_errors_total{store="postgres",operation="find"}')).toBe(1);
  }, 60_000);
});

describe('metrics of the audit log', () => {
  test('batches the database refuses count in authz_audit_write_failures_total; once it takes them again the buffer empties', async () => {
    const metrics = await scrapeMetrics();
    const { db, audit } = server.services;
    await audit.flush();
    await db.raw('alter table audit_events rename to audit_events_away');
    try {
      const web = await createWebClient(server, { firstParty: true });
      const rp = await discover(server, web.clientId, web.secret);
      await signInAndRedeem(rp, await createUser(server));
      await audit.flush();
      // The server's own timer may have tried (and failed) too, so at least one.
      expect((await metrics.since())('authz_audit_write_failures_total')).toBeGreaterThanOrEqual(1);
    } finally {
      await db.raw('alter table audit_events_away rename to audit_events');
    }
    // Counted once the table is back (the timer may have failed once more just before): no failure after that.
    const failures = (await metrics.since())('authz_audit_write_failures_total');
    await audit.flush();
    const settled = await metrics.since();
    expect(settled('authz_audit_write_failures_total')).toBe(failures);
    expect(metrics.before('authz_audit_events_buffered') + settled('authz_audit_events_buffered')).toBe(0);
  });
});
