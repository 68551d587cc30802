/**
 * How long a sign-in lasts, as a user meets it: "Keep me signed in" (LOGIN_REMEMBER_ME) decides whether the
 * browser keeps the session cookie past its own end, and SESSION_MAX_TTL ends a session that is used all the time.
 * Users sign in through our login page over HTTP; the relying party is openid-client.
 */
import * as oidc from 'openid-client';
import { CLOCK_TOLERANCE_SECONDS } from '../../src/store/sql-adapter.js';
import {
  type Fixtures,
  REDIRECT_URI,
  createUser,
  createWebClient,
  discover,
  openLoginPage,
  signInAndRedeem,
} from '../support/relying-party.js';
import { waitFor } from '../support/process.js';
import { type TestServer, startTestServer } from '../support/server.js';
import type { UserAgent } from '../support/user-agent.js';

const epochNow = () => Date.now() / 1000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The session cookie's expiry in epoch seconds, or `undefined` when it is a browser-session cookie. */
function sessionCookieExpiry(agent: UserAgent): number | undefined {
  const line = agent.setCookieLine('_session');
  if (!line) throw new Error('no session cookie was set');
  expect(line).not.toMatch(/max-age/i);
  const expires = /;\s*expires=([^;]+)/i.exec(line)?.[1];
  return expires ? Date.parse(expires) / 1000 : undefined;
}

/** A silent authorization request (prompt=none) in the browser `agent`: where the server sends it. */
async function silentAuthorization(config: oidc.Configuration, agent: UserAgent): Promise<URL> {
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    prompt: 'none',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const response = await agent.request(url.href);
  expect(response.status).toBe(303);
  return new URL(response.headers.get('location') ?? '', url);
}

async function startWith(env: Record<string, string>) {
  const server = await startTestServer({ env });
  const user = await createUser(server);
  const web = await createWebClient(server, { firstParty: true });
  const config = await discover(server, web.clientId, web.secret);
  return { server, user, web, config };
}

describe('"Keep me signed in" (LOGIN_REMEMBER_ME=ask, the default)', () => {
  const SESSION_TTL = 7200;
  let server: TestServer;
  let user: Fixtures;
  let web: { clientId: string };
  let config: oidc.Configuration;

  beforeAll(async () => {
    ({ server, user, web, config } = await startWith({ SESSION_TTL: String(SESSION_TTL) }));
  });
  afterAll(() => server.close());

  test('the login page offers the box, unticked', async () => {
    const { page, form } = await openLoginPage(server, web.clientId);
    expect(page.html).toMatch(/<input id="remember" name="remember" type="checkbox" value="yes"\s*>/);
    expect(page.html).toMatch(/<label class="check" for="remember">[\s\S]*Keep me signed in/);
    expect(form.fields.map((field) => field.name)).not.toContain('remember');
  });

  test('unticked, the session cookie ends with the browser; the server keeps the session for SESSION_TTL', async () => {
    const { agent } = await signInAndRedeem(config, user);
    expect(sessionCookieExpiry(agent)).toBeUndefined();
    const sessions = await server.services.sessions.list(user.userId);
    const session = sessions.find((candidate) => candidate.remembered === false);
    expect(session).toBeDefined();
    expect(session!.expiresAt!.getTime() / 1000).toBeGreaterThan(epochNow() + SESSION_TTL - 10);
    // Still signed in while the browser is open.
    expect((await silentAuthorization(config, agent)).searchParams.get('code')).toEqual(expect.any(String));
  });

  test('ticked, the browser keeps the session cookie for SESSION_TTL', async () => {
    const someone = await createUser(server);
    const { agent } = await signInAndRedeem(config, someone, { remember: true });
    const expiry = sessionCookieExpiry(agent);
    expect(expiry).toBeGreaterThan(epochNow() + SESSION_TTL - 10);
    expect(expiry).toBeLessThan(epochNow() + SESSION_TTL + 10);
    const [session] = await server.services.sessions.list(someone.userId);
    expect(session).toMatchObject({ remembered: true });
  });

  test('a wrong password shows the form again with the box as the user left it', async () => {
    const { agent, page, form } = await openLoginPage(server, web.clientId);
    const ticked = await agent.submit(page, form, { email: user.email, password: 'not the password', remember: 'yes' }, server.issuer);
    expect(ticked.page?.status).toBe(400);
    expect(ticked.page?.html).toMatch(/<input id="remember" name="remember" type="checkbox" value="yes"\s+checked>/);
  });
});

describe('LOGIN_REMEMBER_ME=always and =never', () => {
  test('always: no box, and every session cookie is kept for SESSION_TTL', async () => {
    const { server, user, web, config } = await startWith({ LOGIN_REMEMBER_ME: 'always' });
    try {
      const { page } = await openLoginPage(server, web.clientId);
      expect(page.html).not.toContain('name="remember"');
      const { agent } = await signInAndRedeem(config, user);
      expect(sessionCookieExpiry(agent)).toBeGreaterThan(epochNow() + server.config.ttl.session - 10);
    } finally {
      await server.close();
    }
  });

  test('never: no box, and a session cookie ends with the browser even when the form says to keep it', async () => {
    const { server, user, web, config } = await startWith({ LOGIN_REMEMBER_ME: 'never' });
    try {
      const { page } = await openLoginPage(server, web.clientId);
      expect(page.html).not.toContain('name="remember"');
      const { agent } = await signInAndRedeem(config, user, { remember: true });
      expect(sessionCookieExpiry(agent)).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});

describe('SESSION_MAX_TTL', () => {
  const SESSION_MAX_TTL = 4;
  let server: TestServer;
  let user: Fixtures;
  let config: oidc.Configuration;

  beforeAll(async () => {
    ({ server, user, config } = await startWith({ SESSION_TTL: '3600', SESSION_MAX_TTL: String(SESSION_MAX_TTL) }));
  });
  afterAll(() => server.close());

  test('ends a session in use at its maximum: SSO, then a login prompt, and its access tokens refused', async () => {
    const { agent, tokens } = await signInAndRedeem(config, user, { remember: true, scope: 'openid profile' });
    const signedInAt = epochNow();
    const offline = await signInAndRedeem(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    expect(offline.tokens.refresh_token).toEqual(expect.any(String));

    // The cookie, and the stored session, end at the maximum and not an hour later; a use does not extend them.
    expect(sessionCookieExpiry(agent)).toBeLessThanOrEqual(signedInAt + SESSION_MAX_TTL + 1);
    await pause(1000);
    expect((await silentAuthorization(config, agent)).searchParams.get('code')).toEqual(expect.any(String));
    expect(sessionCookieExpiry(agent)).toBeLessThanOrEqual(signedInAt + SESSION_MAX_TTL + 1);
    const [session] = await server.services.sessions.list(user.userId);
    expect(session!.expiresAt!.getTime() / 1000).toBeLessThanOrEqual(signedInAt + SESSION_MAX_TTL + 1);
    await expect(oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck)).resolves.toMatchObject({ sub: user.userId });

    // Past the maximum, even while a store still holds the record (it keeps records a clock tolerance longer).
    await pause((signedInAt + SESSION_MAX_TTL + 1 - epochNow()) * 1000);
    const silent = await silentAuthorization(config, agent);
    expect(`${silent.origin}${silent.pathname}`).toBe(REDIRECT_URI);
    expect(silent.searchParams.get('error')).toBe('login_required');
    const { page } = await agent.follow(
      oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      }).href,
      server.issuer,
    );
    expect(page?.html).toContain('<h1>Sign in</h1>');

    // Once the store has let the session go, the access tokens bound to it are refused as well…
    await waitFor(async () => (await server.services.sessions.list(user.userId)).length === 0, 'the sessions to be dropped', (CLOCK_TOLERANCE_SECONDS + 5) * 1000);
    const userinfo = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status).toBe(401);
    // …while an offline_access refresh token lives on, as Keycloak's offline tokens outlive SSO sessions.
    const refreshed = await oidc.refreshTokenGrant(config, offline.tokens.refresh_token as string);
    expect(refreshed.access_token).toEqual(expect.any(String));

    // A new sign-in starts a new session, with the whole maximum ahead of it.
    const again = await signInAndRedeem(config, user, { agent, remember: true });
    expect(again.sawLoginPage).toBe(true);
    expect(sessionCookieExpiry(agent)).toBeGreaterThanOrEqual(epochNow() + SESSION_MAX_TTL - 2);
  }, 60_000);
});
