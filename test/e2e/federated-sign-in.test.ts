/**
 * Signing in with another identity provider, over HTTP: the "provider" is a second server of ours (its own
 * database schema and Redis prefix, at 127.0.0.1), a real OpenID Connect provider; the server under test (at
 * localhost, so the two keep their cookies apart as browsers do) lists it in IDENTITY_PROVIDERS_FILE. An app signs
 * in through it with openid-client and reads in the ID token who signed in and how. A person's first sign-in
 * makes their account, a later one finds it by the link (not by address); an existing account is linked only with
 * its password, unless the provider is trusted for confirmed addresses; two-step verification still applies; and
 * every wrong answer (cancelled, replayed, forged, for another provider, from a provider that is down) is a
 * sentence on the login page, never a 500.
 */
import { writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { codeAt, newTotpSecret } from '../../src/accounts/totp.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { PASSWORD, POST_LOGOUT_REDIRECT_URI, type Fixtures, codeFlowRequest, createUser, idTokenClaims, createWebClient, discover, loginFormOf } from '../support/relying-party.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type Page, UserAgent, formOf, parseForms, textOf } from '../support/user-agent.js';

let upstream: TestServer;
let server: TestServer;
let rp: oidc.Configuration;

/**
 * The provider entries: `corp` asks for the password to link, `trusted` links confirmed addresses, `closed` makes
 * no accounts, `mapped` sets roles and an attribute from the provider's claims, `sso` signs out there too.
 */
const PROVIDERS = ['corp', 'trusted', 'closed', 'mapped', 'sso'];

beforeAll(async () => {
  // The provider releases its users' `tenant_id` (with profile) and roles (with the roles scope), at userinfo.
  upstream = await startTestServer({ env: { USER_CLAIMS: 'tenant_id' } });
  const { clientId, secret } = await createWebClient(upstream, { firstParty: true });
  const file = path.join(tmpdir(), `identity-providers-${process.pid}-${Date.now()}.json`);
  const entry = { issuer: upstream.issuer, clientId, clientSecretEnv: 'CORP_CLIENT_SECRET' };
  await writeFile(
    file,
    JSON.stringify([
      { id: 'corp', name: 'Corp SSO', ...entry, authorizationParameters: { ui_locales: 'en-GB' } },
      { id: 'trusted', name: 'Trusted SSO', ...entry, trustEmail: true },
      { id: 'closed', name: 'Closed SSO', ...entry, createAccounts: false },
      {
        id: 'mapped',
        name: 'Mapped SSO',
        ...entry,
        trustEmail: true,
        scope: 'openid email profile roles',
        roles: [{ role: 'staff' }, { role: 'editor', claim: 'roles', value: 'writer' }],
        attributes: { tenant_id: 'tenant_id' },
      },
      { id: 'sso', name: 'Single Sign-Out SSO', ...entry, logout: true },
      // Nothing listens there: a provider that is down.
      { id: 'down', name: 'Down SSO', issuer: `http://127.0.0.1:${await closedPort()}/`, clientId: 'x', clientSecret: 'y' },
    ]),
  );
  server = await startTestServer({ host: 'localhost', env: { IDENTITY_PROVIDERS_FILE: file, CORP_CLIENT_SECRET: secret, TOTP_REQUIRED_ROLES: 'editor' } });
  await upstream.services.clients.update(clientId, {
    redirectUris: PROVIDERS.map((id) => `${server.issuer}/federation/${id}/callback`),
    postLogoutRedirectUris: [`${server.issuer}/federation/sso/logged-out`],
  });
  const app = await createWebClient(server, { firstParty: true });
  rp = await discover(server, app.clientId, app.secret);
});
afterAll(async () => {
  await server?.close();
  await upstream?.close();
});

/** A port nothing listens on: bound, then let go. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A person's browser: one cookie jar per host, as a browser keeps them. */
class Browser {
  readonly down = new UserAgent();
  readonly up = new UserAgent();
}

/** The app's authorization request, up to our login page. */
async function openLogin(browser: Browser) {
  const request = await codeFlowRequest(rp, { scope: 'openid email profile' });
  const { page } = await browser.down.follow(request.url.href, server.issuer);
  if (!page) throw new Error('no login page');
  return { request, page };
}

/** Presses "Continue with …" for `provider`: where the browser is sent. */
async function pressContinueWith(browser: Browser, page: Page, provider: string) {
  const form = formOf(page, `/federated/${provider}`);
  return browser.down.submit(page, form, {}, server.issuer);
}

/** At the provider: its login page, the person's email and password, and back to our callback. */
async function signInAtProvider(browser: Browser, to: URL, person: Fixtures): Promise<URL> {
  const { page, redirectedTo: already } = await browser.up.follow(to.href, upstream.issuer);
  // Signed in there already (an earlier sign-in in this browser): straight back.
  if (already) return already;
  if (!page) throw new Error('no login page at the provider');
  const { redirectedTo } = await browser.up.submit(page, loginFormOf(page), { email: person.email, password: PASSWORD }, upstream.issuer);
  if (!redirectedTo) throw new Error('the provider did not send the browser back');
  return redirectedTo;
}

/** The whole way from the app to our callback's answer: the page shown, or the app's redirect. */
async function signInWith(provider: string, person: Fixtures, browser = new Browser()) {
  const { request, page } = await openLogin(browser);
  const sent = await pressContinueWith(browser, page, provider);
  if (!sent.redirectedTo) throw new Error(`not sent to the provider: ${textOf(sent.page).slice(0, 300)}`);
  const callback = await signInAtProvider(browser, sent.redirectedTo, person);
  const after = await browser.down.follow(callback.href, server.issuer);
  return { browser, request, callback, after };
}

const idTokenOf = (redirectedTo: URL | undefined, request: Awaited<ReturnType<typeof codeFlowRequest>>) => idTokenClaims(rp, redirectedTo, request);

const audited = async (type: string) => {
  await server.services.audit.flush();
  return queryAuditEvents(server.services.db, { type, limit: 1000 });
};

test('the login page offers each provider; a first sign-in makes a linked account without a password, and the next one finds it by the link', async () => {
  const { page } = await openLogin(new Browser());
  expect(textOf(page)).toContain('Continue with Corp SSO');
  expect(textOf(page)).toContain('Continue with Trusted SSO');
  // The redirect URI is ours and one per provider, and the request is a code flow with PKCE, state and nonce.
  const person = await createUser(upstream);
  const browser = new Browser();
  const { page: login } = await openLogin(browser);
  const sent = await pressContinueWith(browser, login, 'corp');
  const asked = sent.redirectedTo as URL;
  expect(asked.origin).toBe(upstream.issuer);
  expect(asked.searchParams.get('redirect_uri')).toBe(`${server.issuer}/federation/corp/callback`);
  expect(asked.searchParams.get('code_challenge_method')).toBe('S256');
  expect(asked.searchParams.get('scope')).toBe('openid email profile');
  expect(asked.searchParams.get('nonce')).toBeTruthy();
  expect(asked.searchParams.get('ui_locales')).toBe('en-GB');

  const { after, request } = await signInWith('corp', person);
  const claims = await idTokenOf(after.redirectedTo, request);
  expect(claims.amr).toEqual(['fed']);
  expect(claims.email).toBe(person.email);
  expect(claims.email_verified).toBe(true);
  const account = await server.services.users.findByEmail(person.email);
  expect(account?.id).toBe(claims.sub);
  expect(account?.name).toBe(person.email.replace(/^user(\d+)\..*/, 'User $1'));
  expect(await server.services.users.verifyPassword(person.email, PASSWORD)).toBeUndefined();
  const links = await server.services.linkedIdentities.listFor(claims.sub);
  expect(links).toEqual([expect.objectContaining({ provider: 'corp', email: person.email })]);

  // Another browser, another day: the same account, found by the provider's subject, not made again.
  const again = await signInWith('corp', person);
  expect((await idTokenOf(again.after.redirectedTo, again.request)).sub).toBe(claims.sub);
  const signIns = (await audited('sign_in')).filter((event) => event.accountId === claims.sub);
  expect(signIns.map((event) => [event.outcome, event.detail?.via])).toEqual([
    ['success', 'corp'],
    ['success', 'corp'],
  ]);
  expect((await audited('identity_linked')).filter((event) => event.accountId === claims.sub)).toHaveLength(1);
});

test('an existing account with the address is linked only with its password; from then on the provider alone signs in to it', async () => {
  const person = await createUser(upstream);
  const mine = await server.services.users.create({ email: person.email, password: PASSWORD, name: 'Mine', roles: [], emailVerified: true });
  const { after, browser, request } = await signInWith('corp', person);
  const linkPage = after.page as Page;
  expect(linkPage.status).toBe(200);
  expect(textOf(linkPage)).toContain(`There is already an account here for ${person.email}`);
  expect(await server.services.linkedIdentities.listFor(mine.id)).toEqual([]);

  const wrong = await browser.down.submit(linkPage, formOf(linkPage, '/federated/link'), { password: 'not the password' }, server.issuer);
  expect(wrong.page?.status).toBe(400);
  expect(textOf(wrong.page)).toContain('That password is not right.');
  const right = await browser.down.submit(wrong.page as Page, formOf(wrong.page as Page, '/federated/link'), { password: PASSWORD }, server.issuer);
  const claims = await idTokenOf(right.redirectedTo, request);
  expect(claims.sub).toBe(mine.id);
  expect(claims.amr).toEqual(['pwd', 'fed']);

  const next = await signInWith('corp', person);
  const later = await idTokenOf(next.after.redirectedTo, next.request);
  expect([later.sub, later.amr]).toEqual([mine.id, ['fed']]);
});

test('"Sign in another way" leaves the account unlinked, at the login page', async () => {
  const person = await createUser(upstream);
  const mine = await server.services.users.create({ email: person.email, password: PASSWORD, roles: [], emailVerified: true });
  const { after, browser } = await signInWith('corp', person);
  const back = await browser.down.submit(after.page as Page, formOf(after.page as Page, '/federated/link/cancel'), {}, server.issuer);
  expect(back.page?.status).toBe(200);
  expect(parseForms(back.page?.html ?? '').some((form) => form.action.endsWith('/login'))).toBe(true);
  expect(await server.services.linkedIdentities.listFor(mine.id)).toEqual([]);
  // The link's form, posted again, finds nothing to link.
  const stale = await browser.down.submit(after.page as Page, formOf(after.page as Page, '/federated/link'), { password: PASSWORD }, server.issuer);
  expect(stale.page?.status).toBe(400);
  expect(textOf(stale.page)).toContain('There is no sign-in to link any more.');
});

test('a provider trusted for confirmed addresses links the existing account at once', async () => {
  const person = await createUser(upstream);
  const mine = await server.services.users.create({ email: person.email, password: PASSWORD, roles: [], emailVerified: true });
  const { after, request } = await signInWith('trusted', person);
  const claims = await idTokenOf(after.redirectedTo, request);
  expect([claims.sub, claims.amr]).toEqual([mine.id, ['fed']]);
  expect((await server.services.linkedIdentities.listFor(mine.id)).map((link) => link.provider)).toEqual(['trusted']);
});

test('an account with two-step verification is asked for its code after the provider', async () => {
  const person = await createUser(upstream);
  const mine = await server.services.users.create({ email: person.email, password: PASSWORD, roles: [], emailVerified: true });
  await server.services.linkedIdentities.link(mine.id, 'trusted', (await upstream.services.users.findByEmail(person.email))?.id ?? '', person.email);
  const secret = newTotpSecret();
  await server.services.twoFactor.enroll(mine.id, secret, codeAt(secret, Date.now()));
  const { after, browser, request } = await signInWith('trusted', person);
  const codePage = after.page as Page;
  expect(codePage.status).toBe(200);
  const done = await browser.down.submit(codePage, formOf(codePage, '/totp'), { code: codeAt(secret, Date.now() + 30_000) }, server.issuer);
  const claims = await idTokenOf(done.redirectedTo, request);
  expect(claims.sub).toBe(mine.id);
  expect(claims.amr).toEqual(['fed', 'otp', 'mfa']);
});

test('refusals: a provider that makes no accounts, an unconfirmed address, a disabled account, a provider that is down, an unknown provider', async () => {
  const stranger = await createUser(upstream);
  const closed = await signInWith('closed', stranger);
  expect(closed.after.page?.status).toBe(403);
  expect(textOf(closed.after.page)).toContain('No account here is linked to that Closed SSO account.');
  expect(await server.services.users.findByEmail(stranger.email)).toBeUndefined();

  // An address the provider has not confirmed makes no account (it could be waiting for its owner).
  const unconfirmed = { email: `unconfirmed.${Date.now()}@example.test`, userId: '' };
  await upstream.services.users.create({ email: unconfirmed.email, password: PASSWORD, roles: [], emailVerified: false });
  const notMade = await signInWith('corp', unconfirmed);
  expect(notMade.after.page?.status).toBe(403);
  expect(textOf(notMade.after.page)).toContain(`Corp SSO has not confirmed your address, ${unconfirmed.email}.`);
  expect(await server.services.users.findByEmail(unconfirmed.email)).toBeUndefined();

  const person = await createUser(upstream);
  const first = await signInWith('corp', person);
  const { sub } = await idTokenOf(first.after.redirectedTo, first.request);
  await server.services.users.disable(sub);
  const refused = await signInWith('corp', person);
  expect(refused.after.page?.status).toBe(403);
  expect(textOf(refused.after.page)).toContain('This account is disabled.');

  const browser = new Browser();
  const { page } = await openLogin(browser);
  const down = await pressContinueWith(browser, page, 'down');
  expect(down.page?.status).toBe(502);
  expect(textOf(down.page)).toContain('Down SSO could not be reached.');

  const unknown = await browser.down.request(`${server.issuer}${formOf(page, '/federated/corp').action.replace(/corp$/, 'nowhere')}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: formOf(page, '/federated/corp').fields.find((field) => field.name === 'csrf')?.value ?? '' }),
  });
  expect(unknown.status).toBe(404);
});

test('wrong answers: cancelled at the provider, replayed, another provider’s, forged state', async () => {
  // Cancelled at the provider: its login page's Cancel sends access_denied back.
  const browser = new Browser();
  const { page } = await openLogin(browser);
  const sent = await pressContinueWith(browser, page, 'corp');
  const { page: theirs } = await browser.up.follow((sent.redirectedTo as URL).href, upstream.issuer);
  const cancelled = await browser.up.submit(theirs as Page, formOf(theirs as Page, '/abort'), {}, upstream.issuer);
  expect(cancelled.redirectedTo?.searchParams.get('error')).toBe('access_denied');
  const shown = await browser.down.follow((cancelled.redirectedTo as URL).href, server.issuer);
  expect(shown.page?.status).toBe(400);
  expect(textOf(shown.page)).toContain('Signing in with Corp SSO was cancelled.');

  // An answer works once: the same callback again is refused, and the login page says why.
  const person = await createUser(upstream);
  const done = await signInWith('corp', person);
  expect(done.after.redirectedTo?.origin).toBe('https://app.example.test');
  const replayed = await done.browser.down.follow(done.callback.href, server.issuer);
  expect(replayed.page?.status).toBe(400);
  expect(textOf(replayed.page)).toContain('You have already signed in to Web App.');

  // An answer that reaches another provider's callback than the sign-in began with (a mix-up) is refused.
  const mixed = new Browser();
  const { page: login } = await openLogin(mixed);
  const toCorp = await pressContinueWith(mixed, login, 'corp');
  const corpAnswer = await signInAtProvider(mixed, toCorp.redirectedTo as URL, person);
  const elsewhere = new URL(corpAnswer.href.replace('/federation/corp/', '/federation/trusted/'));
  const mixedUp = await mixed.down.follow(elsewhere.href, server.issuer);
  expect(mixedUp.page?.status).toBe(400);
  expect(textOf(mixedUp.page)).toContain('The sign-in with Trusted SSO expired or was used already.');

  // A state that names no sign-in, or no state at all.
  for (const query of ['code=x&state=nonsense', 'code=x', 'error=access_denied']) {
    const forged = await new UserAgent().follow(`${server.issuer}/federation/corp/callback?${query}`, server.issuer);
    expect(forged.page?.status).toBe(400);
    expect(textOf(forged.page)).toContain('This answer from a sign-in provider does not belong to a sign-in here.');
  }
  // A well-formed state naming no sign-in of this browser.
  const stranger = await new UserAgent().follow(`${server.issuer}/federation/corp/callback?code=x&state=${'a'.repeat(21)}.${'b'.repeat(43)}`, server.issuer);
  expect(stranger.page?.status).toBe(400);
  expect(stranger.page?.html).toContain('<h1>');
  expect(stranger.page?.html).not.toMatch(/at .*\.ts:\d+/);
});

test('the account page lists the linked sign-in, unlinks it (not while it is the only way in) and links it again', async () => {
  const person = await createUser(upstream);
  // The account page, in another browser: its sign-in is the same login page, and the provider is pressed there.
  const browser = new Browser();
  const { page: login } = await browser.down.follow(`${server.issuer}/account`, server.issuer);
  const sent = await pressContinueWith(browser, login as Page, 'corp');
  const callback = await signInAtProvider(browser, sent.redirectedTo as URL, person);
  const { page } = await browser.down.follow(callback.href, server.issuer);
  expect(page?.status).toBe(200);
  expect(textOf(page)).toContain(`Corp SSO (${person.email}), linked`);
  // An account a provider made has no password: nothing to ask for, and this link is its only way in.
  const refused = await browser.down.submit(page as Page, formOf(page as Page, '/account/identities/unlink'), {}, server.issuer);
  expect(refused.page?.status).toBe(400);
  expect(textOf(refused.page)).toContain('This is your only way to sign in: add a passkey, link another sign-in or set a password first.');

  const account = await server.services.users.findByEmail(person.email);
  await server.services.users.setPassword(account?.id ?? '', PASSWORD);
  // A new password signs every browser out (an administrator's change): sign in again, with the password now.
  const { page: again } = await browser.down.follow(`${server.issuer}/account`, server.issuer);
  const { page: accountPage } = await browser.down.submit(again as Page, loginFormOf(again as Page), { email: person.email, password: PASSWORD }, server.issuer);
  const unlinkForm = formOf(accountPage as Page, '/account/identities/unlink');
  const wrong = await browser.down.submit(accountPage as Page, unlinkForm, { current: 'not it' }, server.issuer);
  expect(wrong.page?.status).toBe(400);
  expect(textOf(wrong.page)).toContain('That is not your current password.');
  const unlinked = await browser.down.submit(accountPage as Page, unlinkForm, { current: PASSWORD }, server.issuer);
  expect(unlinked.page?.status).toBe(200);
  expect(textOf(unlinked.page)).toContain('That sign-in was unlinked: it no longer signs you in.');
  expect(await server.services.linkedIdentities.listFor(account?.id ?? '')).toEqual([]);

  // Linked again from the page: the password, then the provider (signed in there already), then back here.
  const toProvider = await browser.down.submit(unlinked.page as Page, formOf(unlinked.page as Page, '/account/identities/link'), { provider: 'corp', current: PASSWORD }, server.issuer);
  expect(toProvider.redirectedTo?.origin).toBe(upstream.issuer);
  const answer = await signInAtProvider(browser, toProvider.redirectedTo as URL, person);
  expect(answer.searchParams.get('state')).toMatch(/^account\./);
  const linked = await browser.down.follow(answer.href, server.issuer);
  expect(linked.page?.status).toBe(200);
  expect(textOf(linked.page)).toContain('That sign-in was linked: it signs you in here from now on.');
  expect((await server.services.linkedIdentities.listFor(account?.id ?? '')).map((identity) => identity.provider)).toEqual(['corp']);
  // The answer works once.
  const replayed = await browser.down.follow(answer.href, server.issuer);
  expect(replayed.page?.status).toBe(400);
  expect(textOf(replayed.page)).toContain('The link with Corp SSO expired, was used already, or was begun in another session.');

  // Another account here cannot take that provider account: it signs in to the first one.
  const other = await createUser(server);
  const elsewhere = new Browser();
  const { page: otherLogin } = await elsewhere.down.follow(`${server.issuer}/account`, server.issuer);
  const { page: otherPage } = await elsewhere.down.submit(otherLogin as Page, loginFormOf(otherLogin as Page), { email: other.email, password: PASSWORD }, server.issuer);
  const otherToProvider = await elsewhere.down.submit(otherPage as Page, formOf(otherPage as Page, '/account/identities/link'), { provider: 'corp', current: PASSWORD }, server.issuer);
  const otherAnswer = await signInAtProvider(elsewhere, otherToProvider.redirectedTo as URL, person);
  const taken = await elsewhere.down.follow(otherAnswer.href, server.issuer);
  expect(taken.page?.status).toBe(409);
  expect(textOf(taken.page)).toContain('That Corp SSO account signs in to another account here');
  expect(await server.services.linkedIdentities.listFor(other.userId)).toEqual([]);

  const events = (await audited('identity_unlinked')).filter((event) => event.accountId === account?.id);
  expect(events.map((event) => event.detail?.by)).toEqual(['self']);
});

test('an account a provider made sets its first password on the account page, only right after signing in', async () => {
  const person = await createUser(upstream);
  const browser = new Browser();
  const { page: login } = await browser.down.follow(`${server.issuer}/account`, server.issuer);
  const sent = await pressContinueWith(browser, login as Page, 'corp');
  const { page } = await browser.down.follow((await signInAtProvider(browser, sent.redirectedTo as URL, person)).href, server.issuer);
  // Just signed in: the form asks for the new password twice, and no current one (there is none).
  const setForm = formOf(page as Page, '/account/password');
  expect(setForm.fields.map((field) => field.name)).not.toContain('current');
  expect(textOf(page)).toContain('Your account has no password.');
  const mismatch = await browser.down.submit(page as Page, setForm, { password: 'a new long passphrase', repeat: 'another one' }, server.issuer);
  expect(mismatch.page?.status).toBe(400);
  expect(textOf(mismatch.page)).toContain('The passwords do not match.');

  // An old session (its sign-in pushed 10 minutes back): the page offers to sign in again, and a post is refused.
  const sessionId = browser.down.cookies.get('_session') ?? '';
  const session = await server.server.provider.Session.find(sessionId);
  if (!session?.loginTs) throw new Error('no session');
  session.loginTs -= 600;
  await session.save(3600);
  const { page: stale } = await browser.down.follow(`${server.issuer}/account`, server.issuer);
  expect(textOf(stale)).toContain('Sign in again to set a password');
  const refused = await browser.down.submit(page as Page, setForm, { password: 'a new long passphrase', repeat: 'a new long passphrase' }, server.issuer);
  expect(refused.page?.status).toBe(403);
  expect(textOf(refused.page)).toContain('Sign in again first');
  const account = await server.services.users.findByEmail(person.email);
  expect(account?.passwordChangedAt).toBeNull();

  // Signing in again (the login page even though signed in: prompt=login), with the provider, then the form.
  const again = await browser.down.follow(`${server.issuer}/account/password/set-up`, server.issuer);
  expect(new URL(again.page?.url ?? '').pathname).toMatch(/^\/interaction\//);
  const resent = await pressContinueWith(browser, again.page as Page, 'corp');
  const { page: fresh } = await browser.down.follow((await signInAtProvider(browser, resent.redirectedTo as URL, person)).href, server.issuer);
  const set = await browser.down.submit(fresh as Page, formOf(fresh as Page, '/account/password'), { password: 'a new long passphrase', repeat: 'a new long passphrase' }, server.issuer);
  expect(textOf(set.page)).toContain('Your password was set');
  expect(await server.services.users.verifyPassword(person.email, 'a new long passphrase')).toMatchObject({ id: account?.id });
  // From now on it is changed as any password is: with the current one.
  expect(formOf(set.page as Page, '/account/password').fields.map((field) => field.name)).toContain('current');
  const events = (await audited('user_password_changed')).filter((event) => event.accountId === account?.id);
  expect(events.map((event) => event.detail)).toEqual([expect.objectContaining({ by: 'self', first: true })]);
});

test('an app that names the provider (idp_hint, or Keycloak’s kc_idp_hint) skips the login page, once', async () => {
  const person = await createUser(upstream);
  for (const parameter of ['idp_hint', 'kc_idp_hint']) {
    const browser = new Browser();
    const request = await codeFlowRequest(rp, { scope: 'openid email', [parameter]: 'corp' });
    const sent = await browser.down.follow(request.url.href, server.issuer);
    expect(sent.redirectedTo?.origin).toBe(upstream.issuer);
    const callback = await signInAtProvider(browser, sent.redirectedTo as URL, person);
    const { redirectedTo } = await browser.down.follow(callback.href, server.issuer);
    expect((await idTokenOf(redirectedTo, request)).email).toBe(person.email);
  }

  // A hint that names no provider of ours is ignored: the login page.
  const unknown = await new Browser().down.follow((await codeFlowRequest(rp, { idp_hint: 'nowhere' })).url.href, server.issuer);
  expect(unknown.page?.status).toBe(200);
  expect(parseForms(unknown.page?.html ?? '').some((form) => form.action.endsWith('/login'))).toBe(true);

  // Cancelled at the provider: the login page says so, and reloading it does not send the person back there.
  const browser = new Browser();
  const sent = await browser.down.follow((await codeFlowRequest(rp, { idp_hint: 'corp' })).url.href, server.issuer);
  const { page: theirs } = await browser.up.follow((sent.redirectedTo as URL).href, upstream.issuer);
  const cancelled = await browser.up.submit(theirs as Page, formOf(theirs as Page, '/abort'), {}, upstream.issuer);
  const shown = await browser.down.follow((cancelled.redirectedTo as URL).href, server.issuer);
  expect(textOf(shown.page)).toContain('Signing in with Corp SSO was cancelled.');
  const interactionPage = new URL(formOf(shown.page as Page, '/login').action, server.issuer).href.replace(/\/login$/, '');
  const reloaded = await browser.down.follow(interactionPage, server.issuer);
  expect(reloaded.page?.status).toBe(200);
  expect(reloaded.redirectedTo).toBeUndefined();
});

test('the provider’s claims set the roles and attribute the entry maps, at every sign-in; a role it grants can ask for two-step verification', async () => {
  const person = await createUser(upstream, ['reader']);
  await upstream.services.users.update(person.email, { attributes: { tenant_id: 'acme' } });
  const { after, request } = await signInWith('mapped', person);
  const first = await idTokenOf(after.redirectedTo, request);
  const made = await server.services.users.findById(first.sub);
  // `staff` for everyone signing in this way; `editor` only for the provider's writers; the tenant from its claim.
  expect(made?.roles).toEqual(['staff']);
  expect(made?.attributes).toEqual({ tenant_id: 'acme' });

  // An administrator's role the entry does not name stays; the provider makes the person a writer and moves them.
  await server.services.users.setRoles(first.sub, ['staff', 'auditor']);
  await upstream.services.users.update(person.email, { roles: ['reader', 'writer'], attributes: { tenant_id: 'globex' } });
  const writer = await signInWith('mapped', person);
  // editor is one of TOTP_REQUIRED_ROLES: the role was set before the second step was chosen, so it is asked for.
  expect(writer.after.page?.status).toBe(200);
  expect(textOf(writer.after.page)).toContain('two-step verification');
  const promoted = await server.services.users.findById(first.sub);
  expect(promoted?.roles).toEqual(['staff', 'auditor', 'editor']);
  expect(promoted?.attributes).toEqual({ tenant_id: 'globex' });
  const updates = (await audited('user_updated')).filter((event) => event.accountId === first.sub);
  expect(updates.map((event) => event.detail)).toContainEqual(expect.objectContaining({ via: 'mapped', fields: ['roles', 'attributes'], roles: ['staff', 'auditor', 'editor'] }));

  // No longer a writer, and no tenant: editor is taken away and the attribute removed; auditor and staff stay.
  await upstream.services.users.update(person.email, { roles: ['reader'], attributes: { tenant_id: null } });
  const demoted = await signInWith('mapped', person);
  expect((await idTokenOf(demoted.after.redirectedTo, demoted.request)).sub).toBe(first.sub);
  const after2 = await server.services.users.findById(first.sub);
  expect(after2?.roles).toEqual(['staff', 'auditor']);
  expect(after2?.attributes).toEqual({});

  // Nothing changed at the provider: nothing written.
  const before = (await audited('user_updated')).filter((event) => event.accountId === first.sub).length;
  const same = await signInWith('mapped', person);
  await idTokenOf(same.after.redirectedTo, same.request);
  expect((await audited('user_updated')).filter((event) => event.accountId === first.sub)).toHaveLength(before);
});

test('signing out of every app here signs out at a provider with logout too, and goes on to the app; signing out of one app, or after a password sign-in, does not', async () => {
  const person = await createUser(upstream);
  const { browser, after, request } = await signInWith('sso', person);
  const tokens = await oidc.authorizationCodeGrant(rp, after.redirectedTo as URL, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
  const logout = oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token as string, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: 'bye' });
  const { page: confirm } = await browser.down.follow(logout.href, server.issuer);
  const toProvider = await browser.down.submit(confirm as Page, formOf(confirm as Page, '/session/end/confirm'), { logout: 'yes' }, server.issuer);
  // On to the provider's own sign-out, with its ID token as the hint and our page to come back to.
  const there = toProvider.redirectedTo as URL;
  expect(there.origin).toBe(upstream.issuer);
  expect(there.searchParams.get('post_logout_redirect_uri')).toBe(`${server.issuer}/federation/sso/logged-out`);
  expect(there.searchParams.get('id_token_hint')).toBeTruthy();
  const { page: theirs } = await browser.up.follow(there.href, upstream.issuer);
  const back = await browser.up.submit(theirs as Page, formOf(theirs as Page, '/session/end/confirm'), { logout: 'yes' }, upstream.issuer);
  expect((back.redirectedTo as URL).href).toMatch(new RegExp(`^${server.issuer}/federation/sso/logged-out\\?`));
  // Back here, and on to where the app asked to go, with its state.
  const app = await browser.down.follow((back.redirectedTo as URL).href, server.issuer);
  expect(app.redirectedTo?.href).toBe(`${POST_LOGOUT_REDIRECT_URI}?state=bye`);
  // Signed out at the provider: the next sign-in there asks for the password again.
  const { page: login } = await openLogin(browser);
  const again = await pressContinueWith(browser, login, 'sso');
  const atProvider = await browser.up.follow((again.redirectedTo as URL).href, upstream.issuer);
  expect(atProvider.page && loginFormOf(atProvider.page)).toBeTruthy();
  // Coming back to that page again (a replay) only says the person is signed out.
  const replay = await browser.down.follow((back.redirectedTo as URL).href, server.issuer);
  expect(replay.page?.status).toBe(200);

  // "Sign out of Web App only" leaves the session here, and the provider's.
  const second = await signInWith('sso', person);
  const secondTokens = await oidc.authorizationCodeGrant(rp, second.after.redirectedTo as URL, { pkceCodeVerifier: second.request.codeVerifier, expectedState: second.request.state, expectedNonce: second.request.nonce });
  const onlyApp = oidc.buildEndSessionUrl(rp, { id_token_hint: secondTokens.id_token as string, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI });
  const { page: ask } = await second.browser.down.follow(onlyApp.href, server.issuer);
  const kept = await second.browser.down.submit(ask as Page, formOf(ask as Page, '/session/end/confirm'), {}, server.issuer);
  expect(kept.redirectedTo?.href).toBe(POST_LOGOUT_REDIRECT_URI);

  // Signed in with a password since, in the same browser: signing out of all apps stays here.
  await server.services.users.setPassword(secondTokens.claims()?.sub as string, PASSWORD);
  const byPassword = await codeFlowRequest(rp, { prompt: 'login' });
  const { page: passwordLogin } = await second.browser.down.follow(byPassword.url.href, server.issuer);
  const signedIn = await second.browser.down.submit(passwordLogin as Page, loginFormOf(passwordLogin as Page), { email: person.email, password: PASSWORD }, server.issuer);
  const passwordTokens = await oidc.authorizationCodeGrant(rp, signedIn.redirectedTo as URL, { pkceCodeVerifier: byPassword.codeVerifier, expectedState: byPassword.state, expectedNonce: byPassword.nonce });
  const allApps = oidc.buildEndSessionUrl(rp, { id_token_hint: passwordTokens.id_token as string, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI });
  const { page: confirmAll } = await second.browser.down.follow(allApps.href, server.issuer);
  const stayed = await second.browser.down.submit(confirmAll as Page, formOf(confirmAll as Page, '/session/end/confirm'), { logout: 'yes' }, server.issuer);
  expect(stayed.redirectedTo?.href).toBe(POST_LOGOUT_REDIRECT_URI);
});

test('authz identity-providers lists each provider with the redirect URI to register there; --check fetches its discovery', async () => {
  const listed = await runToEnd('src/cli.ts', ['identity-providers', '--check', '--json'], cleanEnvironment(server.env));
  expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 1, stderr: 'authz: identity-providers: down did not answer\n' });
  const rows = JSON.parse(listed.stdout) as Record<string, unknown>[];
  expect(rows.map((row) => [row.id, row.redirectUri, row.discovery])).toEqual([
    ['corp', `${server.issuer}/federation/corp/callback`, 'ok'],
    ['trusted', `${server.issuer}/federation/trusted/callback`, 'ok'],
    ['closed', `${server.issuer}/federation/closed/callback`, 'ok'],
    ['mapped', `${server.issuer}/federation/mapped/callback`, 'ok'],
    ['sso', `${server.issuer}/federation/sso/callback`, 'ok'],
    ['down', `${server.issuer}/federation/down/callback`, 'Down SSO could not be reached. Try again in a moment, or sign in another way.'],
  ]);
  const table = await runToEnd('src/cli.ts', ['identity-providers'], cleanEnvironment(server.env));
  expect(table.code).toBe(0);
  expect(table.stdout).toMatch(/corp\s+Corp SSO\s+oidc\s+http:\/\/127\.0\.0\.1:\d+\s+http:\/\/localhost:\d+\/federation\/corp\/callback\s+yes\s+no/);
});
