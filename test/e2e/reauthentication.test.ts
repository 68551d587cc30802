/**
 * Asking a signed-in user to sign in again, as relying parties do before a sensitive action (OpenID Connect Core
 * §3.1.2.1): `prompt=login` always shows the login page, `max_age` shows it when the sign-in is older, and the ID
 * token's `auth_time` tells the client when the password was last entered. The page starts with the signed-in
 * user's email (or the client's `login_hint`); signing in as someone else there ends the first user's session.
 */
import * as oidc from 'openid-client';
import { type Fixtures, PASSWORD, REDIRECT_URI, createUser, createWebClient, discover, loginFormOf, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type UserAgent, parseForms } from '../support/user-agent.js';

let server: TestServer;
let rp: oidc.Configuration;
let ada: Fixtures;

beforeAll(async () => {
  server = await startTestServer();
  ada = await createUser(server);
  const web = await createWebClient(server, { firstParty: true });
  rp = await discover(server, web.clientId, web.secret);
});
afterAll(() => server.close());

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An authorization request in `agent` with `parameters`; the login page it shows, or the code it ends in at once. */
async function requestAuthorization(agent: UserAgent, parameters: Record<string, string>) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...parameters,
  });
  const step = await agent.follow(url.href, server.issuer);
  return { ...step, codeVerifier };
}

/** Redeems a code and returns the ID token's claims. */
async function idTokenClaims(callback: URL, codeVerifier: string) {
  const tokens = await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: codeVerifier });
  const claims = tokens.claims();
  if (!claims) throw new Error('no ID token');
  return claims;
}

/** The email field's value on a login page. */
const emailShown = (html: string) => loginFormOf({ url: '', status: 200, html, headers: new Headers() }).fields.find((field) => field.name === 'email')?.value;

describe('signing in again', () => {
  test('prompt=login shows the login page with the user’s email, and the new ID token has a later auth_time', async () => {
    const first = await signInAndRedeem(rp, ada);
    const firstAuthTime = first.tokens.claims()?.auth_time as number;
    await pause(1100);

    const step = await requestAuthorization(first.agent, { prompt: 'login' });
    expect(step.page?.html).toContain('<h1>Sign in</h1>');
    expect(emailShown(step.page?.html ?? '')).toBe(ada.email);
    const done = await first.agent.submit(step.page!, loginFormOf(step.page!), { email: ada.email, password: PASSWORD }, server.issuer);
    const claims = await idTokenClaims(done.redirectedTo!, step.codeVerifier);
    expect(claims.sub).toBe(ada.userId);
    expect(claims.auth_time).toBeGreaterThan(firstAuthTime);
  });

  test('max_age asks again only when the sign-in is older than it', async () => {
    const first = await signInAndRedeem(rp, ada);
    const firstAuthTime = first.tokens.claims()?.auth_time as number;
    await pause(2100);

    // Signed in 2 s ago: within an hour, so no page, and the same auth_time.
    const recent = await requestAuthorization(first.agent, { max_age: '3600' });
    expect(recent.page).toBeUndefined();
    expect((await idTokenClaims(recent.redirectedTo!, recent.codeVerifier)).auth_time).toBe(firstAuthTime);

    // Not within 1 s: the login page, and a new auth_time.
    const stale = await requestAuthorization(first.agent, { max_age: '1' });
    expect(emailShown(stale.page?.html ?? '')).toBe(ada.email);
    const done = await first.agent.submit(stale.page!, loginFormOf(stale.page!), { email: ada.email, password: PASSWORD }, server.issuer);
    expect((await idTokenClaims(done.redirectedTo!, stale.codeVerifier)).auth_time).toBeGreaterThan(firstAuthTime);
  });

  test('a login_hint is what the page starts with, before any signed-in user', async () => {
    const first = await signInAndRedeem(rp, ada);
    const step = await requestAuthorization(first.agent, { prompt: 'login', login_hint: 'someone.else@example.test' });
    expect(emailShown(step.page?.html ?? '')).toBe('someone.else@example.test');
  });

  test('signing in there as another person ends the first one’s session and gives the client the second', async () => {
    // Two people of their own, so that no other test's sessions are counted.
    const [carol, dave] = [await createUser(server), await createUser(server)];
    const first = await signInAndRedeem(rp, carol);
    const step = await requestAuthorization(first.agent, { prompt: 'login' });
    const switched = await first.agent.submit(step.page!, loginFormOf(step.page!), { email: dave.email, password: PASSWORD }, server.issuer);
    // oidc-provider first logs the first user out, through a form the browser submits by itself (its script's
    // hash is in the page's CSP); this user agent runs no script, so it submits the form as <noscript> would.
    const [logoutForm] = parseForms(switched.page?.html ?? '');
    expect(logoutForm?.action).toBe(`${server.issuer}/session/end/confirm`);
    expect(switched.page?.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    const done = await first.agent.submit(switched.page!, logoutForm!, {}, server.issuer);

    expect((await idTokenClaims(done.redirectedTo!, step.codeVerifier)).sub).toBe(dave.userId);
    expect(await server.services.sessions.list(carol.userId)).toEqual([]);
    expect(await server.services.sessions.list(dave.userId)).toHaveLength(1);
  });
});
