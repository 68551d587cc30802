/**
 * Account and token security over HTTP: brute-force locks on sign-in and on client authentication, refresh-token
 * reuse and code replay revoking the grant, log out everywhere, and an audit log (and logs) free of secrets.
 */
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import {
  type Fixtures,
  PASSWORD,
  REDIRECT_URI,
  authorize,
  createServiceClient,
  createUser,
  createWebClient,
  discover,
  loginFormOf,
  openLoginPage,
  signInAndRedeem,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import type { Page, UserAgent } from '../support/user-agent.js';

let server: TestServer;
const logLines: string[] = [];

beforeAll(async () => {
  const logDestination = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  server = await startTestServer({
    env: { LOG_LEVEL: 'trace', LOGIN_MAX_FAILURES: '3', LOGIN_LOCK: '60', CLIENT_AUTH_MAX_FAILURES: '3', REFRESH_REUSE_GRACE: '0' },
    logDestination,
  });
});
afterAll(async () => {
  // A server error anywhere in this file is a failure, whatever the test saw.
  expect(logLines.filter((line) => /"level":50/.test(line))).toEqual([]);
  await server.close();
});

const auditEvents = async (type: string) => {
  await server.services.audit.flush();
  return queryAuditEvents(server.services.db, { type, limit: 1000 });
};

const loginPage = (clientId: string) => openLoginPage(server, clientId);

async function tryPassword(agent: UserAgent, page: Page, email: string, password: string) {
  return agent.submit(page, loginFormOf(page), { email, password }, server.issuer);
}

const alertText = (html: string) => /role="alert">([^<]*)</.exec(html)?.[1] ?? '';

describe('brute force on the login page', () => {
  test('an account is locked after too many failures, and while locked the right password is refused alike', async () => {
    const user = await createUser(server);
    const web = await createWebClient(server);
    let { agent, page } = await loginPage(web.clientId);
    // LOGIN_MAX_FAILURES=3: two wrong passwords are answered as such, the third locks the account.
    for (let attempt = 1; attempt <= 2; attempt++) {
      const result = await tryPassword(agent, page, user.email, 'wrong password');
      expect(result.page?.status).toBe(400);
      expect(alertText(result.page?.html ?? '')).toBe('That email and password do not match an account.');
      page = result.page as Page;
    }
    const locking = await tryPassword(agent, page, user.email, 'wrong password');
    expect(locking.page?.status).toBe(429);
    expect(alertText(locking.page?.html ?? '')).toBe('Too many failed sign-in attempts. Try again in 1 minute.');
    expect(Number(locking.page?.headers.get('retry-after'))).toBeGreaterThan(0);

    // Locked: the right password gets exactly the same answer, so the lock cannot be used to test passwords.
    ({ agent, page } = await loginPage(web.clientId));
    const right = await tryPassword(agent, page, user.email, PASSWORD);
    const wrong = await tryPassword(agent, page, user.email, 'another wrong one');
    expect(right.page?.status).toBe(429);
    expect(alertText(right.page?.html ?? '')).toBe(alertText(wrong.page?.html ?? ''));
    expect(right.redirectedTo).toBeUndefined();

    // An unknown email is limited the same way (no difference to probe).
    ({ agent, page } = await loginPage(web.clientId));
    for (let attempt = 1; attempt <= 3; attempt++) ({ page } = { page: (await tryPassword(agent, page, 'nobody@example.test', 'x-password')).page as Page });
    expect(page.status).toBe(429);

    expect((await auditEvents('sign_in_locked')).some((event) => event.detail?.email === user.email)).toBe(true);
  });

  test('a successful sign-in resets the count', async () => {
    const user = await createUser(server);
    const web = await createWebClient(server, { firstParty: true });
    const config = await discover(server, web.clientId, web.secret);
    let { agent, page } = await loginPage(web.clientId);
    for (let attempt = 1; attempt <= 2; attempt++) page = (await tryPassword(agent, page, user.email, 'wrong password')).page as Page;
    await signInAndRedeem(config, user);
    ({ agent, page } = await loginPage(web.clientId));
    for (let attempt = 1; attempt <= 2; attempt++) {
      const result = await tryPassword(agent, page, user.email, 'wrong password');
      expect(result.page?.status).toBe(400);
      page = result.page as Page;
    }
  });
});

describe('brute force on client authentication', () => {
  const token = (clientId: string, secret: string, via: 'basic' | 'post' = 'basic') =>
    fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(via === 'basic' ? { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` } : {}),
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...(via === 'post' ? { client_id: clientId, client_secret: secret } : {}) }),
    });

  test('a client is locked after too many failed authentications, whatever the method', async () => {
    const service = await createServiceClient(server);
    // CLIENT_AUTH_MAX_FAILURES=3: the third failure locks (and is still answered 401, as a failure).
    for (let attempt = 1; attempt <= 3; attempt++) expect((await token(service.clientId, 'wrong-secret')).status).toBe(401);
    for (const via of ['basic', 'post'] as const) {
      const locked = await token(service.clientId, service.secret, via);
      expect(locked.status).toBe(429);
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await locked.json()).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/too many failed client authentications/) });
    }
    const other = await createServiceClient(server);
    expect((await token(other.clientId, other.secret)).status).toBe(200);
    expect((await auditEvents('client_auth_failed')).filter((event) => event.clientId === service.clientId).length).toBeGreaterThanOrEqual(3);
  });
});

describe('brute force on client authentication elsewhere than /token', () => {
  const basic = (clientId: string, secret: string) => `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
  const post = (endpoint: string, clientId: string, secret: string, body: Record<string, string>) =>
    fetch(`${server.issuer}${endpoint}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clientId, secret) }, body: new URLSearchParams(body) });

  test('failures at the PAR and device authorization endpoints count too, lock the client there and at /token, and are audited', async () => {
    const cases: { endpoint: string; name: string; client: { clientId: string; secret: string }; body: Record<string, string> }[] = [
      { endpoint: '/request', name: 'pushed_authorization_request', client: await createWebClient(server), body: { response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' } },
      { endpoint: '/device/auth', name: 'device_authorization', client: await createDeviceClient(), body: { scope: 'openid' } },
    ];
    for (const { endpoint, name, client, body } of cases) {
      for (let attempt = 1; attempt <= 3; attempt++) expect({ endpoint, status: (await post(endpoint, client.clientId, 'wrong-secret', body)).status }).toEqual({ endpoint, status: 401 });
      const locked = await post(endpoint, client.clientId, client.secret, body);
      expect({ endpoint, status: locked.status }).toEqual({ endpoint, status: 429 });
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await post('/token', client.clientId, client.secret, { grant_type: 'client_credentials' })).status).toBe(429);
      const failures = (await auditEvents('client_auth_failed')).filter((event) => event.clientId === client.clientId);
      expect(failures.map((event) => event.detail?.endpoint)).toEqual([name, name, name]);
    }
  });

  async function createDeviceClient() {
    const { client, secret } = await server.services.clients.create({ type: 'device', name: 'TV', tokenEndpointAuthMethod: 'client_secret_basic' });
    return { clientId: client.clientId, secret: secret ?? '' };
  }
});

describe('stolen tokens', () => {
  let user: Fixtures;
  let config: oidc.Configuration;
  beforeAll(async () => {
    user = await createUser(server);
    const web = await createWebClient(server, { firstParty: true });
    config = await discover(server, web.clientId, web.secret);
  });

  test('a rotated refresh token presented again revokes the whole grant and is audited', async () => {
    const { tokens } = await signInAndRedeem(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    const first = tokens.refresh_token as string;
    const second = await oidc.refreshTokenGrant(config, first);
    await expect(oidc.refreshTokenGrant(config, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The legitimate holder's new tokens die with the grant.
    await expect(oidc.refreshTokenGrant(config, second.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(config, second.access_token)).active).toBe(false);
    const reuse = await auditEvents('refresh_reuse_detected');
    expect(reuse.some((event) => event.accountId === user.userId && event.detail?.grantRevoked === true)).toBe(true);
  });

  test('a second redemption of a code fails and revokes what the first issued', async () => {
    const flow = await authorize(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    const tokens = await oidc.authorizationCodeGrant(config, flow.callbackUrl, {
      pkceCodeVerifier: flow.codeVerifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    });
    await expect(
      oidc.authorizationCodeGrant(config, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('the refresh-token grace window', () => {
  let graceful: TestServer;
  beforeAll(async () => {
    graceful = await startTestServer({ env: { REFRESH_REUSE_GRACE: '2' } });
  });
  afterAll(() => graceful.close());

  /** A new user signed in to a new first-party web app with offline_access: its relying party and first tokens. */
  async function offlineSignIn() {
    const user = await createUser(graceful);
    const web = await createWebClient(graceful, { firstParty: true });
    const config = await discover(graceful, web.clientId, web.secret);
    const { tokens } = await signInAndRedeem(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    return { user, config, tokens };
  }

  test('inside the window a just-rotated token works again, in the same grant; after it, reuse revokes everything', async () => {
    const { user, config, tokens } = await offlineSignIn();
    const original = tokens.refresh_token as string;
    // Two tabs refresh with the same token at once: both get tokens.
    const [tabA, tabB] = await Promise.all([oidc.refreshTokenGrant(config, original), oidc.refreshTokenGrant(config, original)]);
    expect((await oidc.tokenIntrospection(config, tabA.access_token)).active).toBe(true);
    expect((await oidc.tokenIntrospection(config, tabB.access_token)).active).toBe(true);
    await graceful.services.audit.flush();
    const graceReuses = await queryAuditEvents(graceful.services.db, { type: 'refresh_reuse_in_grace' });
    expect(graceReuses.some((event) => event.accountId === user.userId)).toBe(true);

    // Later, the original comes back: theft. The whole grant dies, both tabs' tokens with it.
    await new Promise((resolve) => setTimeout(resolve, 3100));
    await expect(oidc.refreshTokenGrant(config, original)).rejects.toMatchObject({ error: 'invalid_grant' });
    for (const tab of [tabA, tabB]) {
      expect((await oidc.tokenIntrospection(config, tab.access_token)).active).toBe(false);
      await expect(oidc.refreshTokenGrant(config, tab.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    }
  });

  test('a token replayed in the window forks no second chain: using one successor kills the other, and presenting that one revokes the grant', async () => {
    const { user, config, tokens } = await offlineSignIn();
    const original = tokens.refresh_token as string;
    // The owner refreshes, and a thief's replay of the same token lands inside the window: two successors.
    const ownerA = await oidc.refreshTokenGrant(config, original);
    const thiefB = await oidc.refreshTokenGrant(config, original);
    expect(thiefB.refresh_token).not.toBe(ownerA.refresh_token);
    // The owner goes on with A: B dies quietly, and presenting it is reuse, which revokes the whole grant.
    const ownerNext = await oidc.refreshTokenGrant(config, ownerA.refresh_token as string);
    expect((await oidc.tokenIntrospection(config, ownerNext.access_token)).active).toBe(true);
    await expect(oidc.refreshTokenGrant(config, thiefB.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(config, ownerNext.access_token)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(config, ownerNext.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    await graceful.services.audit.flush();
    const detected = await queryAuditEvents(graceful.services.db, { type: 'refresh_reuse_detected' });
    expect(detected.some((event) => event.accountId === user.userId)).toBe(true);
  });

  test('the other way round, and still in the window: whichever successor is used first is the one that lives', async () => {
    const { config, tokens } = await offlineSignIn();
    const original = tokens.refresh_token as string;
    const first = await oidc.refreshTokenGrant(config, original);
    const second = await oidc.refreshTokenGrant(config, original);
    const next = await oidc.refreshTokenGrant(config, second.refresh_token as string);
    await expect(oidc.refreshTokenGrant(config, first.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, next.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('two tabs sharing storage refresh at once, and the token last written goes on refreshing, past the window too', async () => {
    const { config, tokens } = await offlineSignIn();
    const [tabA, tabB] = await Promise.all([
      oidc.refreshTokenGrant(config, tokens.refresh_token as string),
      oidc.refreshTokenGrant(config, tokens.refresh_token as string),
    ]);
    for (const tab of [tabA, tabB]) expect((await oidc.tokenIntrospection(config, tab.access_token)).active).toBe(true);
    // Shared storage: the last writer wins (here tab B), and both tabs go on with what is stored.
    let stored = tabB.refresh_token as string;
    for (let round = 0; round < 2; round += 1) {
      const [first, again] = await Promise.all([oidc.refreshTokenGrant(config, stored), oidc.refreshTokenGrant(config, stored)]);
      stored = (round === 0 ? first : again).refresh_token as string;
    }
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const later = await oidc.refreshTokenGrant(config, stored);
    expect((await oidc.tokenIntrospection(config, later.access_token)).active).toBe(true);
  });
});

describe('the password grant (legacy first-party apps)', () => {
  let legacy: TestServer;
  beforeAll(async () => {
    legacy = await startTestServer({ env: { CLIENT_CACHE_TTL_MS: '0', LOGIN_MAX_FAILURES: '2', REFRESH_REUSE_GRACE: '0' } });
  });
  afterAll(() => legacy.close());

  const grantTypes = async () =>
    ((await (await fetch(`${legacy.issuer}/.well-known/openid-configuration`)).json()) as { grant_types_supported: string[] }).grant_types_supported;

  test('is off until a first-party client is registered with it, and is then limited and audited like the login page', async () => {
    expect(await grantTypes()).not.toContain('password');
    await expect(
      legacy.services.clients.create({ type: 'web', name: 'Third party', redirectUris: [REDIRECT_URI], allowPasswordGrant: true }),
    ).rejects.toThrow(/only for first-party/);
    const ordinary = await createWebClient(legacy, { firstParty: true });
    const { client, secret } = await legacy.services.clients.create({
      type: 'web',
      name: 'Legacy app',
      redirectUris: [REDIRECT_URI],
      firstParty: true,
      allowPasswordGrant: true,
    });
    expect(await grantTypes()).toContain('password');

    const user = await createUser(legacy);
    const config = await discover(legacy, client.clientId, secret);
    const tokens = await oidc.genericGrantRequest(config, 'password', { username: user.email, password: PASSWORD, scope: 'openid offline_access email' });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, email: user.email, amr: ['pwd'] });
    expect((await oidc.refreshTokenGrant(config, tokens.refresh_token as string)).access_token).toEqual(expect.any(String));
    expect((await oidc.fetchUserInfo(config, tokens.access_token, user.userId)).email).toBe(user.email);

    // A client not registered for it is refused.
    const ordinaryConfig = await discover(legacy, ordinary.clientId, ordinary.secret);
    await expect(oidc.genericGrantRequest(ordinaryConfig, 'password', { username: user.email, password: PASSWORD })).rejects.toMatchObject({
      error: 'unauthorized_client',
    });

    // Wrong passwords count towards the same lock as the login page.
    await expect(oidc.genericGrantRequest(config, 'password', { username: user.email, password: 'wrong' })).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.genericGrantRequest(config, 'password', { username: user.email, password: 'wrong' })).rejects.toMatchObject({
      status: 429,
    });
    await expect(oidc.genericGrantRequest(config, 'password', { username: user.email, password: PASSWORD })).rejects.toMatchObject({ status: 429 });
    await legacy.services.audit.flush();
    const signIns = await queryAuditEvents(legacy.services.db, { type: 'sign_in', limit: 100 });
    expect(signIns.filter((event) => event.detail?.via === 'password_grant').map((event) => event.outcome)).toEqual(
      expect.arrayContaining(['success', 'failure']),
    );
  });
});

describe('log out everywhere', () => {
  test.each([
    ['revoke-sessions', (email: string) => server.services.users.revokeSessions(email)],
    ['a password change', (email: string) => server.services.users.setPassword(email, PASSWORD)],
    ['disabling the user', (email: string) => server.services.users.disable(email)],
  ])('%s ends every session, grant, refresh token and opaque access token', async (_name, revoke) => {
    const user = await createUser(server);
    const web = await createWebClient(server, { firstParty: true });
    const config = await discover(server, web.clientId, web.secret);
    const signedIn = await signInAndRedeem(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    const other = await signInAndRedeem(config, user, { scope: 'openid offline_access', prompt: 'consent' }); // a second device
    // Tokens are stamped in whole seconds: revoke in a later second than they were issued.
    await new Promise((resolve) => setTimeout(resolve, 1100));

    await revoke(user.email);

    for (const { tokens } of [signedIn, other]) {
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(oidc.fetchUserInfo(config, tokens.access_token, user.userId)).rejects.toBeDefined();
      expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    }
    // The browser's session is gone too: a silent authorization needs a login, a normal one asks for the password.
    const silent = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', prompt: 'none', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    const { redirectedTo } = await signedIn.agent.follow(silent.href, server.issuer);
    expect(redirectedTo?.searchParams.get('error')).toBe('login_required');
    if (_name !== 'disabling the user') {
      const again = await signInAndRedeem(config, user, { agent: signedIn.agent });
      expect(again.sawLoginPage).toBe(true);
    }
  });
});

describe('what is recorded', () => {
  test('the audit log records sign-ins, tokens and admin changes; neither it, the logs nor the stores hold a secret', async () => {
    const user = await createUser(server);
    const web = await createWebClient(server, { firstParty: true });
    const config = await discover(server, web.clientId, web.secret);
    const { tokens, callbackUrl, agent } = await signInAndRedeem(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token as string);
    const service = await createServiceClient(server);
    await oidc.clientCredentialsGrant(await discover(server, service.clientId, service.secret));

    expect((await auditEvents('sign_in')).some((event) => event.accountId === user.userId && event.outcome === 'success')).toBe(true);
    const issued = await auditEvents('token_issued');
    expect(issued.filter((event) => event.clientId === web.clientId).map((event) => event.detail?.grantType)).toEqual(
      expect.arrayContaining(['authorization_code', 'refresh_token']),
    );
    expect((await auditEvents('client_created')).some((event) => event.clientId === service.clientId)).toBe(true);

    const secrets = [
      PASSWORD,
      web.secret,
      service.secret,
      tokens.access_token,
      tokens.refresh_token as string,
      refreshed.refresh_token as string,
      tokens.id_token as string,
      callbackUrl.searchParams.get('code') as string,
      agent.cookies.get('_session') as string,
    ];
    await server.services.audit.flush();
    const audit = JSON.stringify(await server.services.db('audit_events').select('*'));
    // The stores hold tokens under a hash of their value: a dump of Postgres or Redis hands out no credential.
    const stored = [JSON.stringify(await server.services.db('oidc_models').select('*'))];
    const redis = server.services.redis;
    if (redis && server.config.redis) {
      for (const key of await redis.keys(`${server.config.redis.keyPrefix}*`)) {
        const type = await redis.type(key);
        const value =
          type === 'hash' ? await redis.hgetall(key) : type === 'zset' ? await redis.zrange(key, 0, -1) : type === 'string' ? await redis.get(key) : null;
        stored.push(key, JSON.stringify(value));
      }
    }
    const dump = stored.join('\n');
    expect(dump).toContain(user.userId); // the dump is real: it holds this user's records
    // Tokens, refresh tokens and codes are absent; a session record keeps its id (the cookie value), see SECURITY.md.
    for (const secret of secrets.slice(3, -1)) expect(dump).not.toContain(secret);
    const logs = logLines.join('');
    expect(logs.length).toBeGreaterThan(1000); // trace-level logs of all of the above
    for (const secret of secrets) {
      expect(audit).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
  });
});
