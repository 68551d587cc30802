/**
 * Lifting brute-force locks by hand, as an administrator does when a locked-out person calls: the admin API and
 * the CLI show a lock and lift it for a user, a client and an address; the lifted party gets in at once on every
 * instance, each unlock is audited with its actor, and the next lock starts short again. The server sits "behind
 * a proxy" (PROXY=true), so each test speaks from addresses of its own.
 */
import * as oidc from 'openid-client';
import { adminApiIndicator } from '../../src/admin/index.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { describeWithServers } from '../support/environment.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { type Fixtures, PASSWORD, authorize, createServiceClient, createUser, createWebClient, discover, loginFormOf, openLoginPage } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { BrowserAt } from '../support/user-agent.js';

const LOCK_SECONDS = 60;
/** The third wrong password locks an account, the fourth (over any accounts) an address; the third failed client authentication locks a client. */
const LIMITS = {
  PROXY: 'true',
  LOGIN_MAX_FAILURES: '2',
  LOGIN_MAX_FAILURES_PER_IP: '3',
  LOGIN_LOCK: String(LOCK_SECONDS),
  CLIENT_AUTH_MAX_FAILURES: '2',
};

let server: TestServer;
/** A second instance on the same stores, which must see every unlock at once. */
let other: TestServer;
let adminToken: string;

beforeAll(async () => {
  server = await startTestServer({ env: LIMITS });
  other = await startTestServer({ instanceOf: server });
  const admin = await createServiceClient(server, { scope: 'admin' });
  const config = await discover(server, admin.clientId, admin.secret);
  adminToken = (await oidc.clientCredentialsGrant(config, { resource: adminApiIndicator(server.issuer) })).access_token;
});
afterAll(async () => {
  await other?.close();
  await server?.close();
});

async function admin(method: 'GET' | 'DELETE', path: string) {
  const response = await fetch(`${server.url}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${adminToken}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const authz = (args: string[]) => runToEnd('src/cli.ts', args, cleanEnvironment(server.env));

/** Seconds from now until an ISO time. */
const secondsUntil = (iso: unknown) => (Date.parse(String(iso)) - Date.now()) / 1000;

/** Submits our login form from `address` through `instance`; the page's status (429 while locked) or 303 on to the app. */
async function signInFrom(instance: TestServer, address: string, email: string, password: string, clientId: string): Promise<number> {
  const { agent, page } = await openLoginPage(instance, clientId, new BrowserAt(address));
  const result = await agent.submit(page, loginFormOf(page), { email, password }, instance.issuer);
  return result.redirectedTo ? 303 : (result.page?.status ?? 0);
}

async function auditEvents(type: string) {
  await server.services.audit.flush();
  return queryAuditEvents(server.services.db, { type, limit: 100 });
}

/** Client credentials from `address` with `secret`: the token endpoint's status. */
async function clientCredentialsFrom(address: string, clientId: string, secret: string): Promise<number> {
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-forwarded-for': address,
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  await response.body?.cancel();
  return response.status;
}

describeWithServers('unlocking', () => {
  let web: { clientId: string; secret: string };
  beforeAll(async () => {
    web = await createWebClient(server, { firstParty: true });
  });

  test('a user locked out by wrong passwords: the admin API shows the lock, lifts it for every instance, and the next lock starts short', async () => {
    const user: Fixtures = await createUser(server);
    // LOGIN_MAX_FAILURES=2: one wrong password is refused as such; the second locks the account and is answered 429.
    const lockAccount = async (address: string) => {
      const answers = [];
      for (let attempt = 0; attempt < 2; attempt++) answers.push(await signInFrom(server, address, user.email, 'not the password', web.clientId));
      expect(answers).toEqual([400, 429]);
    };
    await lockAccount('203.0.113.60');
    const locked = await admin('GET', `/users/${user.userId}/lock`);
    expect(locked.status).toBe(200);
    expect(secondsUntil(locked.body.lockedUntil)).toBeGreaterThan(LOCK_SECONDS - 10);
    // Refused even with the right password, on the other instance and from another address.
    expect(await signInFrom(other, '203.0.113.61', user.email, PASSWORD, web.clientId)).toBe(429);

    const lifted = await admin('DELETE', `/users/${user.userId}/lock`);
    expect(lifted.status).toBe(200);
    expect(Math.abs(secondsUntil(lifted.body.wasLockedUntil) - secondsUntil(locked.body.lockedUntil))).toBeLessThanOrEqual(1);
    expect(await admin('GET', `/users/${user.userId}/lock`)).toEqual({ status: 200, body: { lockedUntil: null } });
    expect(await signInFrom(other, '203.0.113.61', user.email, PASSWORD, web.clientId)).toBe(303);
    // Nothing left to lift: said so, and not audited again.
    expect(await admin('DELETE', `/users/${user.userId}/lock`)).toEqual({ status: 200, body: { wasLockedUntil: null } });
    const unlocked = (await auditEvents('user_unlocked')).filter((event) => event.accountId === user.userId);
    expect(unlocked).toEqual([expect.objectContaining({ outcome: 'success', detail: { by: 'admin-api', adminClientId: expect.any(String), email: user.email } })]);

    // The earlier lock is forgotten with it: a new one lasts LOGIN_LOCK again instead of twice as long.
    await lockAccount('203.0.113.62');
    expect(secondsUntil((await admin('GET', `/users/${user.userId}/lock`)).body.lockedUntil)).toBeLessThanOrEqual(LOCK_SECONDS + 1);
  });

  test('a client locked out by failed authentication is unlocked with the CLI', async () => {
    const service = await createServiceClient(server);
    for (let attempt = 0; attempt < 2; attempt++) expect(await clientCredentialsFrom('203.0.113.70', service.clientId, 'wrong-secret')).toBe(401);
    expect(await clientCredentialsFrom('203.0.113.71', service.clientId, service.secret)).toBe(429);
    expect(secondsUntil((await admin('GET', `/clients/${service.clientId}/lock`)).body.lockedUntil)).toBeGreaterThan(LOCK_SECONDS - 10);

    const unlocked = await authz(['clients', 'unlock', service.clientId]);
    expect(unlocked.code).toBe(0);
    expect(unlocked.stdout).toMatch(new RegExp(`^client ${service.clientId} was locked until \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z; unlocked\\n$`));
    expect(await clientCredentialsFrom('203.0.113.71', service.clientId, service.secret)).toBe(200);
    expect(await authz(['clients', 'unlock', service.clientId])).toMatchObject({ code: 0, stdout: `client ${service.clientId} was not locked\n` });
    const events = (await auditEvents('client_unlocked')).filter((event) => event.clientId === service.clientId);
    expect(events).toEqual([expect.objectContaining({ outcome: 'success', detail: { by: 'cli' } })]);
  });

  test('a user is unlocked with the CLI by email', async () => {
    const user = await createUser(server);
    for (let attempt = 0; attempt < 2; attempt++) await signInFrom(server, '203.0.113.65', user.email, 'not the password', web.clientId);
    const unlocked = await authz(['users', 'unlock', user.email]);
    expect(unlocked).toMatchObject({ code: 0, stdout: expect.stringMatching(/ was locked until .+; unlocked\n$/) });
    expect(await signInFrom(server, '203.0.113.66', user.email, PASSWORD, web.clientId)).toBe(303);
    expect(await authz(['users', 'unlock', 'nobody@example.test'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/no user/i) });
  });

  test('an address locked by password spraying: the admin API shows which limit locked it, the CLI lifts it', async () => {
    const sprayer = '203.0.113.80';
    const sprayed = await Promise.all([createUser(server), createUser(server), createUser(server), createUser(server)]);
    for (const user of sprayed) await signInFrom(server, sprayer, user.email, 'Summer2024!', web.clientId);
    const rp = await discover(server, web.clientId, web.secret);
    await expect(authorize(rp, sprayed[0]!, { agent: new BrowserAt(sprayer) })).rejects.toThrow(/Too many failed sign-in attempts/);

    const locks = await admin('GET', `/ips/${sprayer}/locks`);
    expect(locks.status).toBe(200);
    expect(secondsUntil(locks.body.signIn)).toBeGreaterThan(LOCK_SECONDS - 10);
    expect(locks.body.clientAuthentication).toBeNull();

    const unlocked = await authz(['ips', 'unlock', sprayer]);
    expect(unlocked).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^${sprayer}: lifted the sign-in lock \\(until .+Z\\)\\n$`)) });
    const flow = await authorize(rp, sprayed[0]!, { agent: new BrowserAt(sprayer) });
    expect(flow.callbackUrl.searchParams.get('code')).toEqual(expect.any(String));
    const events = (await auditEvents('ip_unlocked')).filter((event) => event.ip === sprayer);
    expect(events).toEqual([expect.objectContaining({ detail: { by: 'cli', limits: ['sign_in'] } })]);
  });

  test('what is not an address, user or client is refused with a reason', async () => {
    expect(await admin('GET', '/ips/not-an-address/locks')).toMatchObject({ status: 400, body: { error_description: expect.stringMatching(/not an IPv4 or IPv6 address/) } });
    expect(await admin('DELETE', '/users/00000000-0000-4000-8000-000000000000/lock')).toMatchObject({ status: 404 });
    expect(await admin('DELETE', '/clients/no-such-client/lock')).toMatchObject({ status: 404 });
    expect(await authz(['ips', 'unlock', '203.0.113.999'])).toMatchObject({ code: 1, stderr: 'authz: 203.0.113.999 is not an IPv4 or IPv6 address\n' });
    expect(await admin('GET', '/ips/2001:db8::1/locks')).toEqual({ status: 200, body: { signIn: null, clientAuthentication: null } });
  });
});
