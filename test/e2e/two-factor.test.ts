/**
 * Two-step verification with an authenticator app, as a person and a relying party meet it: set up at the next
 * sign-in when an administrator asks for it (per user, or by role), a code from the app after the password at
 * every sign-in, recovery codes that work once, codes that work once, wrong codes under the same lock as wrong
 * passwords, the ID token's `amr`, an administrator's reset, and the password grant refusing such an account.
 * The "app" is otpauth computing RFC 6238 codes from the key shown on the page, as a phone would.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { codeAt, newTotpSecret } from '../../src/accounts/totp.js';
import { MFA_ACR } from '../../src/accounts/two-factor.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import {
  type Fixtures,
  PASSWORD,
  REDIRECT_URI,
  createUser,
  createWebClient,
  discover,
  legacyPasswordClient,
  loginFormOf,
  openLoginPage,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type Page, UserAgent, parseForms } from '../support/user-agent.js';

let server: TestServer;
let rp: oidc.Configuration;
let clientId: string;

beforeAll(async () => {
  server = await startTestServer({ env: { TOTP_REQUIRED_ROLES: 'admin', LOGIN_MAX_FAILURES: '4' } });
  const web = await createWebClient(server, { firstParty: true });
  clientId = web.clientId;
  rp = await discover(server, web.clientId, web.secret);
});
afterAll(() => server.close());

/** The authenticator app: codes from the key the set-up page shows, for now or a number of 30-second steps on. */
const appFor = (key: string) => (stepsAhead = 0) =>
  new TOTP({ secret: Secret.fromBase32(key), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: Date.now() + stepsAhead * 30_000 });

const formOf = (page: Page, actionSuffix: string) => {
  const form = parseForms(page.html).find((candidate) => candidate.action.endsWith(actionSuffix));
  if (!form) throw new Error(`no ${actionSuffix} form on ${page.url} (${page.status}): ${page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
  return form;
};
const textOf = (page: Page | undefined) => (page?.html ?? '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

/** An authorization request with PKCE in `agent` (of `config`'s client, with `extra` parameters): the first page or the redirect. */
async function startAuthorization(agent: UserAgent, extra: Record<string, string> = {}, config = rp) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email',
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...extra,
  });
  return { step: await agent.follow(url.href, server.issuer), codeVerifier, nonce };
}

/** An authorization request up to the page after the password. */
async function passwordStep(user: Fixtures, agent = new UserAgent()) {
  const { step, codeVerifier, nonce } = await startAuthorization(agent);
  const { page } = step;
  if (!page) throw new Error('no login page');
  const after = await agent.submit(page, loginFormOf(page), { email: user.email, password: PASSWORD }, server.issuer);
  return { agent, after, codeVerifier, nonce };
}

/** Submits a code on the page's code form (`/totp` or `/totp/enroll`). */
const submitCode = (agent: UserAgent, page: Page, actionSuffix: string, code: string) => agent.submit(page, formOf(page, actionSuffix), { code }, server.issuer);

async function idTokenAfter(redirectedTo: URL | undefined, codeVerifier: string, nonce: string) {
  if (!redirectedTo) throw new Error('the sign-in did not reach the app');
  const tokens = await oidc.authorizationCodeGrant(rp, redirectedTo, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce });
  return tokens.claims();
}

/** The key a set-up page shows for typing by hand (what its QR code holds), without the spaces. */
const keyShownOn = (page: Page) => /id="secret">([^<]+)</.exec(page.html)?.[1]?.replace(/\s/g, '') ?? '';
/** The recovery codes a page lists. */
const recoveryCodesOn = (page: Page | undefined) => [...(page?.html ?? '').matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((match) => match[1] as string);

/** On a set-up page, as a person does: adds the key to the app, types its code, keeps the recovery codes, continues. */
async function setUpApp(agent: UserAgent, page: Page) {
  const app = appFor(keyShownOn(page));
  const shown = await submitCode(agent, page, '/totp/enroll', app());
  const codes = recoveryCodesOn(shown.page);
  const done = await agent.submit(shown.page as Page, formOf(shown.page as Page, '/totp/continue'), {}, server.issuer);
  return { app, codes, done };
}

/** Sets up the app for a user who must: returns their app and recovery codes. */
async function enroll(user: Fixtures) {
  const { agent, after, codeVerifier, nonce } = await passwordStep(user);
  const { app, codes, done } = await setUpApp(agent, after.page as Page);
  return { app, codes, claims: await idTokenAfter(done.redirectedTo, codeVerifier, nonce) };
}

const audited = async (type: string, accountId: string) => {
  await server.services.audit.flush();
  return (await queryAuditEvents(server.services.db, { type, limit: 200 })).filter((event) => event.accountId === accountId);
};

describe('setting up two-step verification', () => {
  test('a user asked to set it up gets a QR code after the password, confirms with a code, sees ten recovery codes once, and is signed in with amr otp', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    const { agent, after, codeVerifier, nonce } = await passwordStep(user);
    const page = after.page as Page;
    expect(page.status).toBe(200);
    expect(page.url).toBe(`${server.issuer}/interaction/${page.url.split('/').at(-1)}`); // reloading it is safe: a GET
    expect(page.html).toContain('<h1>Set up two-step verification</h1>');
    expect(page.html).toMatch(/<figure class="qr"[^>]*><svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const key = keyShownOn(page);
    expect(key).toMatch(/^[A-Z2-7]{32}$/); // 160 bits
    // A reload shows the same key: a person who scanned it before reloading is not left with a dead entry.
    const reloaded = await agent.follow(page.url, server.issuer);
    expect(keyShownOn(reloaded.page as Page)).toBe(key);

    const wrong = await submitCode(agent, page, '/totp/enroll', '000000' === appFor(key)() ? '111111' : '000000');
    expect(wrong.page?.status).toBe(400);
    expect(textOf(wrong.page)).toContain('That code does not match');
    expect((await server.services.users.findById(user.userId))?.totpEnrolledAt).toBeNull();

    const shown = await submitCode(agent, wrong.page as Page, '/totp/enroll', appFor(key)());
    expect(shown.page?.status).toBe(200);
    const codes = recoveryCodesOn(shown.page);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
    // Reloading after the set-up does not show them again.
    const again = await agent.follow(shown.page?.url ?? '', server.issuer);
    expect(textOf(again.page)).toContain('Your recovery codes were shown once');
    expect(again.page?.html).not.toContain(codes[0]);

    const done = await agent.submit(again.page as Page, formOf(again.page as Page, '/totp/continue'), {}, server.issuer);
    const claims = await idTokenAfter(done.redirectedTo, codeVerifier, nonce);
    expect(claims).toMatchObject({ sub: user.userId, amr: ['pwd', 'otp', 'mfa'] });

    const stored = await server.services.db('users').where({ id: user.userId }).first();
    expect(stored.totp_enrolled_at).toBeInstanceOf(Date);
    expect(stored.totp_secret).toMatch(/^v1\.t1\./); // sealed under the pepper, not the key itself
    expect(stored.totp_secret).not.toContain(key);
    expect(stored.totp_recovery_codes).toHaveLength(10);
    expect(JSON.stringify(stored.totp_recovery_codes)).not.toContain(codes[0]?.replace('-', ''));
    expect((await audited('totp_enrolled', user.userId)).map((event) => event.outcome)).toEqual(['success']);
  });

  test('users with a role in TOTP_REQUIRED_ROLES must set it up; others sign in with their password alone', async () => {
    const admin = await createUser(server, ['admin']);
    const reader = await createUser(server, ['reader']);
    expect((await passwordStep(admin)).after.page?.html).toContain('<h1>Set up two-step verification</h1>');
    const plain = await passwordStep(reader);
    expect(plain.after.redirectedTo?.searchParams.get('code')).toEqual(expect.any(String));
    expect(await idTokenAfter(plain.after.redirectedTo, plain.codeVerifier, plain.nonce)).toMatchObject({ amr: ['pwd'] });
  });
});

describe('signing in with two-step verification', () => {
  test('the password alone is not enough: the app’s code is asked for, works once, and the ID token says otp', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    const { app } = await enroll(user);

    const { agent, after, codeVerifier, nonce } = await passwordStep(user);
    const page = after.page as Page;
    expect(after.redirectedTo).toBeUndefined();
    expect(page.html).toContain('<h1>Two-step verification</h1>');
    expect(page.html).toContain('autocomplete="one-time-code"');

    // The code used to set it up (this step) was used already; so is any earlier one.
    const replayed = await submitCode(agent, page, '/totp', app());
    expect(replayed.page?.status).toBe(400);
    expect(textOf(replayed.page)).toContain('That code is not right, or was used already');

    const next = app(1); // the next step's code, accepted a step early (a phone's clock a little ahead)
    const done = await submitCode(agent, replayed.page as Page, '/totp', ` ${next.slice(0, 3)} ${next.slice(3)} `);
    // acr too, though this request did not ask for it (no acr_values): apps requiring two steps check it.
    expect(await idTokenAfter(done.redirectedTo, codeVerifier, nonce)).toMatchObject({ sub: user.userId, amr: ['pwd', 'otp', 'mfa'], acr: MFA_ACR });

    // Another sign-in with that same code, racing or not, is refused.
    const second = await passwordStep(user);
    expect((await submitCode(second.agent, second.after.page as Page, '/totp', next)).page?.status).toBe(400);
  });

  test('a recovery code signs in once (typed in any case, without the dash), and the ID token says mfa without otp', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    const { codes } = await enroll(user);
    const code = codes[3] as string;

    const { agent, after, codeVerifier, nonce } = await passwordStep(user);
    const recovered = await submitCode(agent, after.page as Page, '/totp', code.replace('-', '').toUpperCase());
    expect(textOf(recovered.page)).toContain('you have 9 recovery codes left');
    const done = await agent.submit(recovered.page as Page, formOf(recovered.page as Page, '/totp/continue'), {}, server.issuer);
    expect(await idTokenAfter(done.redirectedTo, codeVerifier, nonce)).toMatchObject({ amr: ['pwd', 'mfa'] });
    const signIns = await audited('sign_in', user.userId);
    expect(signIns.find((event) => event.outcome === 'success' && event.detail?.recoveryCodesLeft !== undefined)?.detail).toMatchObject({
      amr: ['pwd', 'mfa'],
      recoveryCodesLeft: 9,
    });

    const again = await passwordStep(user);
    const refused = await submitCode(again.agent, again.after.page as Page, '/totp', code);
    expect(refused.page?.status).toBe(400);
  });

  test('after a recovery code (a lost phone) the person sets up a new app there and then: the old app and the old codes stop working', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    const { app: oldApp, codes: oldCodes } = await enroll(user);

    const { agent, after, codeVerifier, nonce } = await passwordStep(user);
    const recovered = await submitCode(agent, after.page as Page, '/totp', oldCodes[0] as string);
    const setUp = await agent.submit(recovered.page as Page, formOf(recovered.page as Page, '/totp/replace'), {}, server.issuer);
    const page = setUp.page as Page;
    expect(page.url).toMatch(/\/interaction\/[^/]+$/); // shown by a GET: a reload is safe
    expect(page.html).toContain('<h1>Set up a new authenticator app</h1>');
    const { app: newApp, codes: newCodes, done } = await setUpApp(agent, page);
    expect(newCodes).toHaveLength(10);
    expect(await idTokenAfter(done.redirectedTo, codeVerifier, nonce)).toMatchObject({ sub: user.userId, amr: ['pwd', 'mfa'] });
    const enrolled = await audited('totp_enrolled', user.userId);
    expect(enrolled.map((event) => event.detail?.replaced ?? false)).toEqual(expect.arrayContaining([true, false]));

    // The old app's next code and an unused old recovery code are refused; the new app's next code passes.
    const next = await passwordStep(user);
    const stale = await submitCode(next.agent, next.after.page as Page, '/totp', oldApp(1));
    expect(stale.page?.status).toBe(400);
    const staleCode = await submitCode(next.agent, stale.page as Page, '/totp', oldCodes[1] as string);
    expect(staleCode.page?.status).toBe(400);
    const fresh = await submitCode(next.agent, staleCode.page as Page, '/totp', newApp(1));
    expect(await idTokenAfter(fresh.redirectedTo, next.codeVerifier, next.nonce)).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] });
    await server.services.locks.unlockAccount({ id: user.userId, email: user.email });
  });

  test('wrong codes count against the same lock as wrong passwords, and typing the password again does not reset the count', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    const { app } = await enroll(user);
    const wrong = app(5) === '123456' ? '654321' : '123456';

    let attempt = await passwordStep(user);
    let page = attempt.after.page as Page;
    for (let tries = 0; tries < 3; tries++) {
      const answer = await submitCode(attempt.agent, page, '/totp', wrong);
      expect(answer.page?.status).toBe(400);
      page = answer.page as Page;
    }
    // The attacker who knows the password starts over: the count is still there.
    attempt = await passwordStep(user);
    const locked = await submitCode(attempt.agent, attempt.after.page as Page, '/totp', wrong);
    expect(locked.page?.status).toBe(429);
    expect(textOf(locked.page)).toContain('Too many failed sign-in attempts');
    // While locked even the right code is refused before it is looked at.
    const right = await submitCode(attempt.agent, locked.page as Page, '/totp', app(1));
    expect(right.page?.status).toBe(429);
    expect((await audited('sign_in', user.userId)).filter((event) => event.detail?.reason === 'bad_second_factor')).toHaveLength(4);
    await server.services.locks.unlockAccount({ id: user.userId, email: user.email });
  });

  test('the second step cannot be skipped: the provider’s resume address and the enrollment’s last step both refuse', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    await enroll(user);
    const { agent, after } = await passwordStep(user);
    const page = after.page as Page;
    const uid = page.url.split('/').at(-1) as string;

    // "Continue" belongs to the set-up, not to this sign-in.
    const csrf = formOf(page, '/totp').fields.find((field) => field.name === 'csrf')?.value ?? '';
    const skipped = await agent.follow(`${server.issuer}/interaction/${uid}/totp/continue`, server.issuer, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf }),
    });
    expect(skipped.page?.status).toBe(400);
    expect(skipped.redirectedTo).toBeUndefined();

    // The provider's own resume address has no login result to act on: it asks for a sign-in again.
    const resumed = await agent.follow(`${server.issuer}/auth/${uid}`, server.issuer);
    expect(resumed.redirectedTo).toBeUndefined();
    expect(resumed.page?.html).toContain('<h1>Sign in</h1>');
  });
});

describe('what APIs are told', () => {
  const PAYMENTS = 'https://payments.example.test';

  test('an API’s JWT access token says how the user signed in (auth_time, acr, amr, RFC 9068 §2.2.1), after a refresh too', async () => {
    await server.services.apis.create({ indicator: PAYMENTS, name: 'Payments', scopes: ['payments:send'] });
    const user = await createUser(server);
    const secret = newTotpSecret();
    await server.services.twoFactor.enroll(user.userId, secret, codeAt(secret, Date.now()));
    const agent = new UserAgent();
    const { step, codeVerifier, nonce } = await startAuthorization(agent, { scope: 'openid offline_access payments:send', resource: PAYMENTS, prompt: 'consent' });
    const afterPassword = await agent.submit(step.page as Page, loginFormOf(step.page as Page), { email: user.email, password: PASSWORD }, server.issuer);
    const done = await submitCode(agent, afterPassword.page as Page, '/totp', codeAt(secret, Date.now() + 30_000));
    const tokens = await oidc.authorizationCodeGrant(rp, done.redirectedTo as URL, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce });

    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    const verify = async (token: string) => (await jwtVerify(token, jwks, { issuer: server.issuer, audience: PAYMENTS, typ: 'at+jwt' })).payload;
    const first = await verify(tokens.access_token);
    expect(first).toMatchObject({ sub: user.userId, acr: MFA_ACR, amr: ['pwd', 'otp', 'mfa'], auth_time: tokens.claims()?.auth_time });
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string, { resource: PAYMENTS });
    expect(await verify(refreshed.access_token)).toMatchObject({ acr: MFA_ACR, amr: ['pwd', 'otp', 'mfa'], auth_time: first.auth_time });

    // A sign-in with the password alone: amr pwd, no acr.
    const plainUser = await createUser(server);
    const plainAgent = new UserAgent();
    const started = await startAuthorization(plainAgent, { scope: 'openid payments:send', resource: PAYMENTS });
    const signedIn = await plainAgent.submit(started.step.page as Page, loginFormOf(started.step.page as Page), { email: plainUser.email, password: PASSWORD }, server.issuer);
    const plainTokens = await oidc.authorizationCodeGrant(rp, signedIn.redirectedTo as URL, { pkceCodeVerifier: started.codeVerifier, expectedNonce: started.nonce });
    const payload = await verify(plainTokens.access_token);
    expect(payload.amr).toEqual(['pwd']);
    expect(payload.acr).toBeUndefined();

    // An opaque access token (for userinfo): introspection says the same.
    const again = await startAuthorization(agent, { scope: 'openid' }); // signed in already: straight back
    const opaque = await oidc.authorizationCodeGrant(rp, again.step.redirectedTo as URL, { pkceCodeVerifier: again.codeVerifier, expectedNonce: again.nonce });
    expect(await oidc.tokenIntrospection(rp, opaque.access_token)).toMatchObject({ active: true, acr: MFA_ACR, amr: ['pwd', 'otp', 'mfa'] });
  });
});

describe('administering two-step verification', () => {
  test('a reset (a lost phone) turns it off: the old app’s codes stop working and, when still required, the next sign-in sets it up again', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    await enroll(user);
    const reset = await server.services.users.resetTwoFactor(user.email);
    expect(reset.user).toMatchObject({ totpRequired: true, totpEnrolledAt: null });
    expect(reset.removedEnrollmentOf).toBeInstanceOf(Date);
    expect((await passwordStep(user)).after.page?.html).toContain('<h1>Set up two-step verification</h1>');
    expect((await audited('user_totp_reset', user.userId)).map((event) => event.detail?.wasEnrolled)).toEqual([true]);

    await server.services.users.update(user.email, { totpRequired: false });
    const plain = await passwordStep(user);
    expect(plain.after.redirectedTo?.searchParams.get('code')).toEqual(expect.any(String));
  });

  test('the password grant refuses an account with two-step verification, and says how to sign in instead', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    const legacy = await legacyPasswordClient(server);
    await expect(oidc.genericGrantRequest(legacy, 'password', { username: user.email, password: PASSWORD, scope: 'openid' })).rejects.toMatchObject({
      error: 'invalid_grant',
      error_description: 'this account uses two-step verification: sign in through the browser instead',
    });
  });

  test('the login page of another user is unaffected by a pending second step in another browser', async () => {
    const user = await createUser(server);
    await server.services.users.update(user.email, { totpRequired: true });
    await passwordStep(user);
    const { page } = await openLoginPage(server, clientId);
    expect(page.html).toContain('<h1>Sign in</h1>');
  });
});

describe('a client asking for two steps (acr_values, step-up)', () => {
  /** An authorization request asking for a sign-in with two steps, in `agent`; the first page or the redirect. */
  const askForTwoSteps = (agent: UserAgent, extra: Record<string, string> = {}) => startAuthorization(agent, { acr_values: MFA_ACR, ...extra });

  test('discovery lists the multi-factor acr, and a sign-in with the password alone has no acr', async () => {
    expect(rp.serverMetadata().acr_values_supported).toEqual([MFA_ACR]);
    const plain = await passwordStep(await createUser(server));
    const claims = await idTokenAfter(plain.after.redirectedTo, plain.codeVerifier, plain.nonce);
    expect(claims?.acr).toBeUndefined();
  });

  test('a user without an app sets one up after the password, and the ID token carries the multi-factor acr', async () => {
    const user = await createUser(server);
    const agent = new UserAgent();
    const { step, codeVerifier, nonce } = await askForTwoSteps(agent);
    const afterPassword = await agent.submit(step.page as Page, loginFormOf(step.page as Page), { email: user.email, password: PASSWORD }, server.issuer);
    const page = afterPassword.page as Page;
    expect(page.html).toContain('<h1>Set up two-step verification</h1>');
    const { done } = await setUpApp(agent, page);
    expect(await idTokenAfter(done.redirectedTo, codeVerifier, nonce)).toMatchObject({ acr: MFA_ACR, amr: ['pwd', 'otp', 'mfa'] });
  });

  test('a user signed in with the password alone is asked only for the code (not the password again), and stays signed in', async () => {
    const user = await createUser(server);
    const first = await passwordStep(user);
    const firstClaims = await idTokenAfter(first.after.redirectedTo, first.codeVerifier, first.nonce);
    const secret = newTotpSecret();
    await server.services.twoFactor.enroll(user.userId, secret, codeAt(secret, Date.now()));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a later auth_time, in whole seconds

    // prompt=none cannot show the code page: the app is told to ask with a page.
    const silent = await askForTwoSteps(first.agent, { prompt: 'none' });
    expect(silent.step.redirectedTo?.searchParams.get('error')).toBe('login_required');

    const { step, codeVerifier, nonce } = await askForTwoSteps(first.agent);
    const page = step.page as Page;
    expect(page.html).toContain('<h1>Two-step verification</h1>');
    expect(page.html).not.toContain('type="password"');
    const done = await submitCode(first.agent, page, '/totp', codeAt(secret, Date.now() + 30_000));
    const claims = await idTokenAfter(done.redirectedTo, codeVerifier, nonce);
    expect(claims).toMatchObject({ sub: user.userId, acr: MFA_ACR, amr: ['pwd', 'otp', 'mfa'] });
    expect(claims?.auth_time).toBeGreaterThan(firstClaims?.auth_time as number);

    // The session now has both steps: the next request asking for them passes without a page.
    const again = await askForTwoSteps(first.agent, { prompt: 'none' });
    expect(again.step.redirectedTo?.searchParams.get('code')).toEqual(expect.any(String));
    expect(await idTokenAfter(again.step.redirectedTo, again.codeVerifier, again.nonce)).toMatchObject({ acr: MFA_ACR });
  });
});

describe('a client that requires two steps (requireMfa)', () => {
  let strict: oidc.Configuration;
  let strictId: string;

  beforeAll(async () => {
    const { client, secret } = await server.services.clients.create({
      type: 'web',
      name: 'Admin console',
      redirectUris: [REDIRECT_URI],
      firstParty: true,
      requireMfa: true,
    });
    strictId = client.clientId;
    strict = await discover(server, client.clientId, secret);
  });

  /** An authorization request of the strict client in `agent`, with `extra` parameters. */
  const requestOfStrictClient = (agent: UserAgent, extra: Record<string, string> = {}) => startAuthorization(agent, extra, strict);

  test('its users must set up an app, even when the request’s acr_values asks for something else', async () => {
    expect((await server.services.clients.require(strictId)).requireMfa).toBe(true);
    const user = await createUser(server);
    const agent = new UserAgent();
    const { step, codeVerifier, nonce } = await requestOfStrictClient(agent, { acr_values: 'urn:example:weak' });
    const afterPassword = await agent.submit(step.page as Page, loginFormOf(step.page as Page), { email: user.email, password: PASSWORD }, server.issuer);
    const page = afterPassword.page as Page;
    expect(page.html).toContain('<h1>Set up two-step verification</h1>');
    const { done } = await setUpApp(agent, page);
    const tokens = await oidc.authorizationCodeGrant(strict, done.redirectedTo as URL, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, acr: MFA_ACR, amr: ['pwd', 'otp', 'mfa'] });
  });

  test('a session signed in with the password alone at another app is asked for the code before reaching it', async () => {
    const user = await createUser(server);
    const elsewhere = await passwordStep(user); // the ordinary web app: password only
    expect(elsewhere.after.redirectedTo?.searchParams.get('code')).toEqual(expect.any(String));
    const secret = newTotpSecret();
    await server.services.twoFactor.enroll(user.userId, secret, codeAt(secret, Date.now()));

    const { step, codeVerifier, nonce } = await requestOfStrictClient(elsewhere.agent);
    expect(step.redirectedTo).toBeUndefined();
    expect(step.page?.html).toContain('<h1>Two-step verification</h1>');
    const done = await submitCode(elsewhere.agent, step.page as Page, '/totp', codeAt(secret, Date.now() + 30_000));
    const tokens = await oidc.authorizationCodeGrant(strict, done.redirectedTo as URL, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, acr: MFA_ACR });
  });

  test('is refused for a service client, and can be turned off again', async () => {
    await expect(server.services.clients.create({ type: 'service', name: 'Job', requireMfa: true })).rejects.toThrow(
      'a service client signs no users in, so there is no sign-in to add a second step to',
    );
    const { client } = await server.services.clients.create({ type: 'spa', name: 'SPA', redirectUris: [REDIRECT_URI], requireMfa: true });
    const off = await server.services.clients.update(client.clientId, { requireMfa: false });
    expect(off).toMatchObject({ requireMfa: false, requireDpop: false, requirePar: false });
    expect(off.metadata).not.toHaveProperty('require_mfa');
  });
});
