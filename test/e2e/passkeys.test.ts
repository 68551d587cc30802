/**
 * Passkeys over HTTP, with an authenticator held in software (test/support/software-passkey.ts) standing in for the
 * browser's: a person adds one on the account page (after their current password), then signs in to an app with it
 * alone, and the app's openid-client reads how in the ID token. Every way an answer can be wrong is refused with a
 * sentence on the login page, never a 500: garbage, a replayed answer, no user verification, another origin,
 * another key, a counter that went back, a passkey removed, a disabled account. The browser's side of it, with
 * Chromium's virtual authenticator, is in test/browser/passkeys.test.ts.
 */
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { parseUserFile } from '../../src/accounts/user-import.js';
import { codeAt, newTotpSecret } from '../../src/accounts/totp.js';
import { MFA_ACR } from '../../src/accounts/two-factor.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { PASSWORD, REDIRECT_URI, codeFlowRequest, createUser, createWebClient, discover, loginFormOf, openLoginPage } from '../support/relying-party.js';
import { adminApiOf } from '../support/admin-api.js';
import { type MailCatcher, linkIn, startMailCatcher } from '../support/mail-catcher.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { SoftwarePasskey } from '../support/software-passkey.js';
import { BrowserAt, type Page, type UserAgent, formOf, textOf } from '../support/user-agent.js';

let server: TestServer;
let mail: MailCatcher;
let webClientId: string;
let webClient: oidc.Configuration;
let addresses = 0;

beforeAll(async () => {
  // PROXY: each test speaks from an address of its own, so one test's refusals do not lock another's IP.
  mail = await startMailCatcher();
  server = await startTestServer({ host: 'localhost', env: { SMTP_URL: mail.url, PROXY: 'true', LOGIN_MAX_FAILURES_PER_IP: '6', LOGIN_MAX_FAILURES: '3', LOGIN_LOCK: '60' } });
  const { clientId, secret } = await createWebClient(server, { firstParty: true });
  webClientId = clientId;
  webClient = await discover(server, clientId, secret);
});
afterAll(async () => {
  await server.close();
  await mail.close();
});

const person = () => new BrowserAt(`198.51.100.${++addresses}`);

const auditEvents = async (type: string, accountId?: string) => {
  await server.services.audit.flush();
  return (await queryAuditEvents(server.services.db, { type, limit: 1000 })).filter((event) => !accountId || event.accountId === accountId);
};

/** Posts `fields` to `path` as the page's script does, and reads the JSON answer. */
async function postForJson(agent: UserAgent, path: string, fields: Record<string, string>, at = server) {
  const response = await agent.request(`${at.issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(fields),
  });
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined };
}

const csrfOf = (page: Page, action: string) => formOf(page, action).fields.find((field) => field.name === 'csrf')?.value ?? '';

/** Opens /account in `agent`, signing in with the password on the way. */
async function openAccount(agent: UserAgent, email: string, at = server): Promise<Page> {
  const { page: login } = await agent.follow(`${at.issuer}/account`, at.issuer);
  const { page } = await agent.submit(login as Page, loginFormOf(login as Page), { email, password: PASSWORD }, at.issuer);
  if (page?.status !== 200) throw new Error(`no account page: ${textOf(page).slice(0, 300)}`);
  return page;
}

/**
 * Adds `passkey` on the account page open in `agent`: the password (none for an account without one), the
 * ceremony, the form. Returns the page after.
 */
async function addPasskey(agent: UserAgent, page: Page, passkey: SoftwarePasskey, name = 'Test key', at = server, current: string | undefined = PASSWORD) {
  const options = await postForJson(agent, '/account/passkeys/options', { csrf: csrfOf(page, '/account/passkeys/add'), ...(current !== undefined && { current }) }, at);
  if (options.status !== 200 || !options.body) throw new Error(`no options: ${options.status} ${JSON.stringify(options.body)}`);
  const creation = options.body.options as { challenge: string };
  const answer = passkey.attestation({ challenge: creation.challenge });
  const added = await agent.submit(page, formOf(page, '/account/passkeys/add'), { credential: JSON.stringify(answer), challenge: String(options.body.challenge), name }, at.issuer);
  return { options: options.body, page: added.page };
}

/** A user with a passkey added through their account page. */
async function userWithPasskey(options: { counting?: boolean; synced?: boolean } = {}) {
  const user = await createUser(server);
  const passkey = new SoftwarePasskey(user.userId, new URL(server.issuer).origin, options);
  const agent = person();
  const { page } = await addPasskey(agent, await openAccount(agent, user.email), passkey);
  expect(page?.status).toBe(200);
  return { user, passkey };
}

/** An app's authorization request, up to its login page in a new browser; `answer` then signs in there with a passkey. */
async function loginPage(agent: UserAgent = person(), extra: Record<string, string> = {}) {
  const request = await codeFlowRequest(webClient, { scope: 'openid email', ...extra });
  const { page, redirectedTo } = await agent.follow(request.url.href, server.issuer);
  if (!page) throw new Error(`no login page: sent to ${redirectedTo?.href}`);
  return { agent, page, request };
}

/** The login page's passkey options, then the answer `respond` makes of them, posted as the page's form. */
async function answerWithPasskey(agent: UserAgent, page: Page, respond: (challenge: string) => Record<string, unknown> | string, at = server) {
  const uid = new URL(page.url).pathname.split('/')[2];
  const options = await postForJson(agent, `/interaction/${uid}/passkey/options`, { csrf: csrfOf(page, '/passkey') }, at);
  const challenge = String(options.body?.challenge);
  const credential = respond(challenge);
  const answer = typeof credential === 'string' ? credential : JSON.stringify(credential);
  const result = await agent.submit(page, formOf(page, '/passkey'), { credential: answer }, at.issuer);
  return { options, result, answer };
}

describe('adding a passkey on the account page', () => {
  test('asks for the current password first, offers options for a discoverable passkey with user verification, and lists it once added', async () => {
    const user = await createUser(server);
    const agent = person();
    const page = await openAccount(agent, user.email);
    expect(textOf(page)).toContain('Passkeys');
    expect(page.html).toContain('<script src="/assets/passkeys.js"></script>');

    const wrong = await postForJson(agent, '/account/passkeys/options', { csrf: csrfOf(page, '/account/passkeys/add'), current: 'not my password' });
    expect(wrong).toMatchObject({ status: 400, body: { error: 'That is not your current password.' } });
    const noCsrf = await postForJson(agent, '/account/passkeys/options', { current: PASSWORD });
    expect(noCsrf.status).toBe(403);

    const passkey = new SoftwarePasskey(user.userId, new URL(server.issuer).origin);
    const { options, page: after } = await addPasskey(agent, page, passkey, 'Work laptop');
    expect(options.options).toMatchObject({
      rp: { id: 'localhost' },
      // The user handle is the account id, never the address.
      user: { id: Buffer.from(user.userId).toString('base64url'), name: user.email },
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      attestation: 'none',
    });
    expect(after?.url).toBe(`${server.issuer}/account?done=passkey-added#passkeys`);
    expect(textOf(after)).toContain('Your passkey was added.');
    expect(textOf(after)).toContain('Work laptop');
    expect(await server.services.passkeys.list(user.userId)).toEqual([expect.objectContaining({ id: passkey.id, name: 'Work laptop', backedUp: false, lastUsedAt: null })]);
    expect(await auditEvents('passkey_added', user.userId)).toEqual([expect.objectContaining({ outcome: 'success', detail: { by: 'self', passkey: 'Work laptop', synced: false, authenticator: null } })]);
    // The account's address is told, so that a passkey its owner did not add does not go unnoticed.
    const notice = await mail.next(user.email);
    expect(notice.subject).toBe(`A passkey was added to your account at ${new URL(server.issuer).host}`);
    expect(notice.text).toContain('A passkey named "Work laptop" was added');
    expect(notice.text).toContain(`${server.issuer}/account`);

    // Adding it again: the new options exclude it, and a registration of it anyway is refused.
    const again = await addPasskey(agent, after as Page, passkey);
    expect((again.options.options as { excludeCredentials: { id: string }[] }).excludeCredentials).toEqual([expect.objectContaining({ id: passkey.id })]);
    expect(again.page?.status).toBe(400);
    expect(textOf(again.page)).toContain('That passkey is registered already.');
  });

  test('a challenge sealed for another session, tampered with, or not from us is refused, and nothing is kept', async () => {
    const user = await createUser(server);
    const other = await createUser(server);
    const otherAgent = person();
    const otherPage = await openAccount(otherAgent, other.email);
    const sealedForOther = await postForJson(otherAgent, '/account/passkeys/options', { csrf: csrfOf(otherPage, '/account/passkeys/add'), current: PASSWORD });

    const agent = person();
    const page = await openAccount(agent, user.email);
    const passkey = new SoftwarePasskey(user.userId, new URL(server.issuer).origin);
    const own = await postForJson(agent, '/account/passkeys/options', { csrf: csrfOf(page, '/account/passkeys/add'), current: PASSWORD });
    const ownSealed = String(own.body?.challenge);
    const [challenge] = ownSealed.split('.');
    const cases = [
      String(sealedForOther.body?.challenge),
      `${challenge}.9999999999.${ownSealed.split('.')[2]}`,
      `${challenge}`,
      'x'.repeat(500),
    ];
    for (const sealed of cases) {
      const answer = passkey.attestation({ challenge: sealed.split('.')[0] ?? '' });
      const { page: refused } = await agent.submit(page, formOf(page, '/account/passkeys/add'), { credential: JSON.stringify(answer), challenge: sealed }, server.issuer);
      expect(refused?.status).toBe(400);
      expect(textOf(refused)).toContain('Adding the passkey took too long, or was started in another session. Try again.');
    }
    // The right seal with an answer to another challenge, or no answer at all.
    const wrongAnswer = passkey.attestation({ challenge: 'not-the-challenge' });
    const { page: mismatch } = await agent.submit(page, formOf(page, '/account/passkeys/add'), { credential: JSON.stringify(wrongAnswer), challenge: ownSealed }, server.issuer);
    expect(textOf(mismatch)).toContain('The passkey could not be checked.');
    for (const garbage of ['', 'not json', '{"id":"x"}', JSON.stringify({ ...wrongAnswer, type: 'password' })]) {
      const { page: refused } = await agent.submit(page, formOf(page, '/account/passkeys/add'), { credential: garbage, challenge: ownSealed }, server.issuer);
      expect(refused?.status).toBe(400);
      expect(textOf(refused)).toMatch(/Your browser did not send a passkey|could not be checked/);
    }
    expect(await server.services.passkeys.list(user.userId)).toEqual([]);
  });

  test('the make of authenticator is named from its AAGUID: the name a passkey gets when given none, on the page and for administrators', async () => {
    const user = await createUser(server);
    const agent = person();
    const origin = new URL(server.issuer).origin;
    const googleAaguid = 'ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4';
    const synced = new SoftwarePasskey(user.userId, origin, { synced: true, aaguid: googleAaguid });
    const { page: first } = await addPasskey(agent, await openAccount(agent, user.email), synced, '');
    const named = new SoftwarePasskey(user.userId, origin, { aaguid: googleAaguid });
    const { page: second } = await addPasskey(agent, first as Page, named, 'Work laptop');
    const unknown = new SoftwarePasskey(user.userId, origin, { aaguid: '01234567-89ab-cdef-0123-456789abcdef' });
    const { page: after } = await addPasskey(agent, second as Page, unknown, '');

    // Named after what holds it, or "Passkey"; where the name is the person's own, the make is said beside it.
    expect(textOf(after)).toContain('Google Password Manager (synced), added');
    expect(textOf(after)).toContain('Work laptop (Google Password Manager), added');
    expect(textOf(after)).toMatch(/Passkey, added/);
    const listed = await server.services.passkeys.list(user.userId);
    expect(listed.map(({ name, authenticator, aaguid }) => ({ name, authenticator, aaguid }))).toEqual(
      expect.arrayContaining([
        { name: 'Google Password Manager', authenticator: 'Google Password Manager', aaguid: googleAaguid },
        { name: 'Work laptop', authenticator: 'Google Password Manager', aaguid: googleAaguid },
        { name: 'Passkey', authenticator: null, aaguid: '01234567-89ab-cdef-0123-456789abcdef' },
      ]),
    );
    expect((await auditEvents('passkey_added', user.userId)).map((event) => event.detail)).toEqual(
      expect.arrayContaining([{ by: 'self', passkey: 'Google Password Manager', synced: true, authenticator: 'Google Password Manager' }]),
    );
  });

  test('renaming one needs a name and touches no other account\'s', async () => {
    const { user, passkey } = await userWithPasskey();
    const other = await userWithPasskey();
    const agent = person();
    const page = await openAccount(agent, user.email);
    const empty = await agent.submit(page, formOf(page, '/account/passkeys/rename'), { name: '  ' }, server.issuer);
    expect(empty.page?.status).toBe(400);
    expect(textOf(empty.page)).toContain('Enter a name.');
    const renamed = await agent.submit(page, formOf(page, '/account/passkeys/rename'), { name: 'Phone in the drawer' }, server.issuer);
    expect(renamed.page?.url).toBe(`${server.issuer}/account?done=passkey-renamed#passkeys`);
    expect(textOf(renamed.page)).toContain('Phone in the drawer');
    expect(await server.services.passkeys.list(user.userId)).toEqual([expect.objectContaining({ id: passkey.id, name: 'Phone in the drawer' })]);

    // Another account's passkey id in the form: nothing changes there.
    await agent.submit(page, formOf(page, '/account/passkeys/rename'), { passkey: other.passkey.id, name: 'Mine now' }, server.issuer);
    expect(await server.services.passkeys.list(other.user.userId)).toEqual([expect.objectContaining({ name: 'Test key' })]);
  });

  test('removing one asks for the password; then it is audited, and it signs in no more', async () => {
    const { user, passkey } = await userWithPasskey();
    const agent = person();
    const page = await openAccount(agent, user.email);
    const removeForm = formOf(page, '/account/passkeys/remove');
    const { page: unasked } = await agent.submit(page, removeForm, {}, server.issuer);
    expect(unasked?.status).toBe(400);
    expect(textOf(unasked)).toContain('Enter your current password.');
    const { page: wrong } = await agent.submit(page, removeForm, { current: 'not my password' }, server.issuer);
    expect(wrong?.status).toBe(400);
    expect(textOf(wrong)).toContain('That is not your current password.');
    expect(await server.services.passkeys.list(user.userId)).toHaveLength(1);
    expect((await auditEvents('sign_in', user.userId)).filter((event) => event.outcome === 'failure')).toEqual([
      expect.objectContaining({ detail: expect.objectContaining({ via: 'account', reason: 'bad_credentials' }) }),
    ]);

    const { page: after } = await agent.submit(page, removeForm, { current: PASSWORD }, server.issuer);
    expect(after?.url).toBe(`${server.issuer}/account?done=passkey-removed#passkeys`);
    expect(await server.services.passkeys.list(user.userId)).toEqual([]);
    expect(await auditEvents('passkey_removed', user.userId)).toEqual([expect.objectContaining({ detail: { by: 'self', passkey: 'Test key' } })]);

    const { agent: signIn, page: login } = await loginPage();
    const { result } = await answerWithPasskey(signIn, login, (challenge) => passkey.assertion({ challenge }));
    expect(result.page?.status).toBe(400);
    expect(textOf(result.page)).toContain('That passkey is not registered for an account here. Sign in with your password instead.');
  });
});

/** "Forgot your password?" for `email`: the link from the mail. */
async function resetLink(email: string): Promise<string> {
  const agent = person();
  const { page } = await agent.follow(`${server.issuer}/account/password-reset`, server.issuer);
  await agent.submit(page as Page, formOf(page as Page, '/account/password-reset'), { email }, server.issuer);
  for (;;) {
    const sent = await mail.next(email);
    if (sent.subject.startsWith('Reset your password')) return linkIn(sent, `${server.issuer}/account/password-reset/new`);
  }
}

/** Pushes the sign-in of `agent`'s session back ten minutes: no longer "just now". */
async function ageSignIn(agent: UserAgent) {
  const session = await server.server.provider.Session.find(agent.cookies.get('_session') ?? '');
  if (!session?.loginTs) throw new Error('no session');
  session.loginTs -= 600;
  await session.save(3600);
}

describe('going without a password', () => {
  const NO_OTHER_WAY_IN = 'Add a passkey or link another sign-in first: without a password, that is how you will sign in.';
  const ONLY_WAY_IN = 'This is your only way to sign in: add a passkey, link another sign-in or set a password first.';

  test('a person with a passkey removes their password: it and a reset link mailed before stop working, the passkey signs in, and is not removed while it is the only way in', async () => {
    const user = await createUser(server);
    const agent = person();
    const page = await openAccount(agent, user.email);
    // Without a passkey (or another sign-in) there is nothing to go on with: not offered, and refused when posted.
    expect(page.html).not.toContain('/account/password/remove');
    const alone = await agent.request(`${server.issuer}/account/password/remove`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: csrfOf(page, '/account/passkeys/add'), current: PASSWORD }),
    });
    expect(alone.status).toBe(400);
    expect(textOf({ html: await alone.text() } as Page)).toContain(NO_OTHER_WAY_IN);

    const passkey = new SoftwarePasskey(user.userId, new URL(server.issuer).origin);
    const { page: withPasskey } = await addPasskey(agent, page, passkey);
    const link = await resetLink(user.email);
    const removal = formOf(withPasskey as Page, '/account/password/remove');
    const wrong = await agent.submit(withPasskey as Page, removal, { current: 'not my password' }, server.issuer);
    expect(wrong.page?.status).toBe(400);
    expect(textOf(wrong.page)).toContain('That is not your current password.');
    const { page: removed } = await agent.submit(withPasskey as Page, removal, { current: PASSWORD }, server.issuer);
    expect(removed?.url).toBe(`${server.issuer}/account?done=password-removed-others#password`);
    expect(textOf(removed)).toContain('Your password was removed, and your other sessions were signed out.');
    expect(textOf(removed)).toContain('Your account has no password.');
    expect(await server.services.users.verifyPassword(user.email, PASSWORD)).toBeUndefined();
    expect(await auditEvents('user_password_removed', user.userId)).toEqual([expect.objectContaining({ detail: { by: 'self' } })]);
    const { page: stale } = await person().follow(link, server.issuer);
    expect(stale?.status).toBe(400);
    expect(textOf(stale)).toContain('This link has expired or was used already.');

    // The passkey signs in to an app on its own.
    const { agent: signIn, page: login, request } = await loginPage();
    const { result } = await answerWithPasskey(signIn, login, (challenge) => passkey.assertion({ challenge }));
    const tokens = await oidc.authorizationCodeGrant(webClient, result.redirectedTo as URL, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
    expect(tokens.claims()?.sub).toBe(user.userId);

    // Signed in just now, the page asks no password for a passkey; but the only one stays.
    const lastOne = formOf(removed as Page, '/account/passkeys/remove');
    expect(lastOne.fields.map((field) => field.name)).not.toContain('current');
    const kept = await agent.submit(removed as Page, lastOne, {}, server.issuer);
    expect(kept.page?.status).toBe(400);
    expect(textOf(kept.page)).toContain(ONLY_WAY_IN);
    expect(await server.services.passkeys.list(user.userId)).toHaveLength(1);
  });

  test('an account without a password changes its passkeys and address only right after signing in, and signs in again for it', async () => {
    const { user, passkey } = await userWithPasskey();
    await server.services.users.removePassword(user.userId);
    // Signed in with the passkey: the page offers no password form, and a second passkey needs none.
    const { agent, page: login } = await loginPage();
    await answerWithPasskey(agent, login, (challenge) => passkey.assertion({ challenge }));
    const { page } = await agent.follow(`${server.issuer}/account`, server.issuer);
    const second = new SoftwarePasskey(user.userId, new URL(server.issuer).origin);
    const { page: added } = await addPasskey(agent, page as Page, second, 'Phone', server, undefined);
    expect(textOf(added)).toContain('Your passkey was added.');

    // Ten minutes on, each such change waits for a new sign-in, which the page offers.
    await ageSignIn(agent);
    const { page: later } = await agent.follow(`${server.issuer}/account`, server.issuer);
    expect(later?.html).toContain('href="/account/sign-in-again/passkeys"');
    expect(later?.html).toContain('href="/account/sign-in-again/email"');
    const options = await postForJson(agent, '/account/passkeys/options', { csrf: csrfOf(later as Page, '/account/passkeys/add') });
    expect(options).toMatchObject({ status: 403, body: { error: expect.stringContaining('Sign in again first') } });
    const removal = await agent.submit(later as Page, formOf(later as Page, '/account/passkeys/remove'), {}, server.issuer);
    expect(removal.page?.status).toBe(403);
    const address = await agent.submit(later as Page, formOf(later as Page, '/account/email/change'), { email: `moved.${user.email}` }, server.issuer);
    expect(address.page?.status).toBe(403);
    expect(textOf(address.page)).toContain('Sign in again first: your account has no password, so this is done only right after signing in.');
    expect(await server.services.passkeys.list(user.userId)).toHaveLength(2);

    // "Sign in again": the login page even though signed in (prompt=login), a passkey, and back to the section.
    expect((await agent.request(`${server.issuer}/account/sign-in-again/nonsense`)).status).toBe(404);
    const { page: again } = await agent.follow(`${server.issuer}/account/sign-in-again/passkeys`, server.issuer);
    expect(new URL(again?.url ?? '').pathname).toMatch(/^\/interaction\//);
    const { result } = await answerWithPasskey(agent, again as Page, (challenge) => second.assertion({ challenge }));
    const back = result.page;
    expect(back?.url).toBe(`${server.issuer}/account#passkeys`);
    const { page: gone } = await agent.submit(back as Page, formOf(back as Page, '/account/passkeys/remove'), {}, server.issuer);
    expect(gone?.url).toBe(`${server.issuer}/account?done=passkey-removed#passkeys`);
    expect(await server.services.passkeys.list(user.userId)).toHaveLength(1);
  });

  test('two tabs taking away the last two ways in at the same moment: one goes, the other is refused, and the account keeps a way in', async () => {
    // Each round posts both forms together; without the account's row locked both would read the other way as left.
    for (let round = 0; round < 4; round += 1) {
      const { user } = await userWithPasskey();
      const agent = person();
      const page = await openAccount(agent, user.email);
      const [password, passkey] = await Promise.all([
        agent.submit(page, formOf(page, '/account/password/remove'), { current: PASSWORD }, server.issuer),
        agent.submit(page, formOf(page, '/account/passkeys/remove'), { current: PASSWORD }, server.issuer),
      ]);
      const statuses = [password.page?.status ?? password.redirectedTo?.href, passkey.page?.status ?? passkey.redirectedTo?.href];
      expect(statuses.filter((status) => status === 400)).toHaveLength(1);
      const refused = password.page?.status === 400 ? password.page : passkey.page;
      expect(textOf(refused)).toMatch(new RegExp(`${NO_OTHER_WAY_IN}|${ONLY_WAY_IN}`.replace(/[.:,]/g, '\\$&')));
      const hasPassword = (await server.services.users.verifyPassword(user.email, PASSWORD)) !== undefined;
      const passkeys = await server.services.passkeys.list(user.userId);
      expect([hasPassword, passkeys.length]).toEqual(password.page?.status === 400 ? [true, 0] : [false, 1]);
    }
  });
});

describe('an administrator removes a password', () => {
  test('through the admin API: the passkey goes on signing in, the password no more; audited by admin-api', async () => {
    const { user, passkey } = await userWithPasskey();
    const adminApi = await adminApiOf(server);
    const removed = await adminApi.call('DELETE', `/users/${user.userId}/password`);
    expect(removed).toMatchObject({ status: 200, body: { id: user.userId, passwordChangedAt: null } });
    expect(await server.services.users.verifyPassword(user.email, PASSWORD)).toBeUndefined();
    expect(await auditEvents('user_password_removed', user.userId)).toEqual([expect.objectContaining({ detail: expect.objectContaining({ by: 'admin-api' }) })]);
    const { agent, page } = await loginPage();
    const { result } = await answerWithPasskey(agent, page, (challenge) => passkey.assertion({ challenge }));
    expect(result.redirectedTo?.searchParams.get('code')).toBeTruthy();
    expect((await adminApi.call('DELETE', '/users/00000000-0000-4000-8000-000000000000/password')).status).toBe(404);
  });
});

describe('a forgotten password, when someone else may have added a passkey', () => {
  test('the reset offers to remove the account\'s passkeys too, unticked: left alone they stay, ticked they go', async () => {
    const { user, passkey } = await userWithPasskey();
    const reset = async (values: Record<string, string>) => {
      const agent = person();
      const { page } = await agent.follow(await resetLink(user.email), server.issuer);
      expect(textOf(page)).toContain('Also remove my passkeys (1)');
      return (await agent.submit(page as Page, formOf(page as Page, '/account/password-reset/new'), values, server.issuer)).page;
    };

    const kept = await reset({ password: 'a first new password', repeat: 'a first new password' });
    expect(textOf(kept)).toContain('Password changed');
    expect(textOf(kept)).not.toContain('passkeys were removed');
    expect(await server.services.passkeys.list(user.userId)).toHaveLength(1);

    const removed = await reset({ password: 'a second new password', repeat: 'a second new password', removePasskeys: 'yes' });
    expect(textOf(removed)).toContain('Your passkeys were removed (1)');
    expect(await server.services.passkeys.list(user.userId)).toEqual([]);
    expect(await auditEvents('password_reset', user.userId)).toContainEqual(expect.objectContaining({ detail: expect.objectContaining({ removedPasskeys: 1 }) }));
    expect(await auditEvents('passkey_removed', user.userId)).toEqual([expect.objectContaining({ detail: { by: 'self', passkey: 'Test key' } })]);

    const { agent, page } = await loginPage();
    const { result } = await answerWithPasskey(agent, page, (challenge) => passkey.assertion({ challenge }));
    expect(textOf(result.page)).toContain('That passkey is not registered for an account here.');
  });
});

describe('signing in with a passkey', () => {
  test('the passkey alone signs its owner in to an app, whose ID token says how (amr, the two-step acr)', async () => {
    const { user, passkey } = await userWithPasskey({ counting: true });
    const { agent, page, request } = await loginPage();
    expect(formOf(page, '/passkey')).toBeTruthy();
    expect(page.html).toContain('autocomplete="username webauthn"');

    const { options, result } = await answerWithPasskey(agent, page, (challenge) => passkey.assertion({ challenge }));
    expect(options).toMatchObject({ status: 200, body: { rpId: 'localhost', userVerification: 'required' } });
    // "Keep me signed in" was not ticked: the session ends with the browser.
    expect(agent.setCookieLine('_session')).not.toMatch(/expires=/i);
    expect(options.type).toContain('application/json');
    expect(result.redirectedTo?.href.startsWith(REDIRECT_URI)).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(webClient, result.redirectedTo as URL, {
      pkceCodeVerifier: request.codeVerifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, amr: ['hwk', 'user', 'mfa'], acr: MFA_ACR, email: user.email });

    const [stored] = await server.services.passkeys.list(user.userId);
    expect(stored?.lastUsedAt).toBeInstanceOf(Date);
    expect(await auditEvents('sign_in', user.userId)).toContainEqual(
      expect.objectContaining({ outcome: 'success', clientId: webClientId, detail: { email: user.email, via: 'passkey', amr: ['hwk', 'user', 'mfa'], passkey: 'Test key' } }),
    );
  });

  test('passkeys brought by a Keycloak export sign their owners in here, where the host is the one they were made for', async () => {
    const keycloakId = randomUUID();
    const email = `kc-passkey-${Date.now()}@example.test`;
    const passkey = new SoftwarePasskey(keycloakId, new URL(server.issuer).origin, { counting: true });
    passkey.counter = 41;
    // As Keycloak exports one: the credential id in base64, the COSE key in base64url, the counter it saw last.
    const credentialData = { credentialId: Buffer.from(passkey.id, 'base64url').toString('base64'), credentialPublicKey: passkey.coseKey().toString('base64url'), counter: 41, aaguid: 'fa2b99dc-9e39-4257-8f92-4a30d23c4118', transports: ['usb', 'nfc'], attestationStatementFormat: 'none' };
    const exported = { users: [{ id: keycloakId, username: 'kc', email, enabled: true, emailVerified: true, credentials: [{ type: 'webauthn-passwordless', userLabel: 'Office key', createdDate: 1700000000000, secretData: '{}', credentialData: JSON.stringify(credentialData) }] }] };
    await server.services.users.importUsers(parseUserFile(JSON.stringify(exported), 'keycloak'));
    expect(await server.services.passkeys.list(keycloakId)).toEqual([expect.objectContaining({ id: passkey.id, name: 'Office key', authenticator: 'YubiKey 5 Series with NFC', transports: ['usb', 'nfc'] })]);

    const { agent, page, request } = await loginPage();
    const { result } = await answerWithPasskey(agent, page, (challenge) => passkey.assertion({ challenge }));
    const tokens = await oidc.authorizationCodeGrant(webClient, result.redirectedTo as URL, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
    expect(tokens.claims()).toMatchObject({ sub: keycloakId, email, amr: ['hwk', 'user', 'mfa'] });

    // The same passkey in a second file is refused whole; a key that is no COSE key is named.
    const again = { users: [{ ...exported.users[0], id: randomUUID(), email: `other-${email}` }] };
    await expect(server.services.users.importUsers(parseUserFile(JSON.stringify(again), 'keycloak'))).rejects.toThrow('a passkey of the file is registered here already; nothing was imported');
    const notCose = { users: [{ ...again.users[0], credentials: [{ type: 'webauthn', credentialData: JSON.stringify({ ...credentialData, credentialPublicKey: 'AAAA' }) }] }] };
    expect(() => parseUserFile(JSON.stringify(notCose), 'keycloak')).toThrow(/user 1 \(kc\): passkeys\.0\.publicKey: publicKey must be a COSE key/);
  });

  test('a synced passkey is a software key (swk), and an app that requires two steps asks for nothing more', async () => {
    const { user, passkey } = await userWithPasskey({ synced: true });
    const { client, secret } = await server.services.clients.create({ type: 'web', name: 'Strict App', redirectUris: [REDIRECT_URI], firstParty: true, requireMfa: true });
    const strict = await discover(server, client.clientId, secret);
    const request = await codeFlowRequest(strict);
    const agent = person();
    const { page } = await agent.follow(request.url.href, server.issuer);
    const { result } = await answerWithPasskey(agent, page as Page, (challenge) => passkey.assertion({ challenge }));
    const tokens = await oidc.authorizationCodeGrant(strict, result.redirectedTo as URL, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, amr: ['swk', 'user', 'mfa'], acr: MFA_ACR });
  });

  test('an answer works once, a challenge works once, and what is not an answer gets a sentence, not a 500', async () => {
    const { passkey } = await userWithPasskey();
    const { agent, page } = await loginPage();
    const { result, answer } = await answerWithPasskey(agent, page, (challenge) => passkey.assertion({ challenge }));
    expect(result.redirectedTo).toBeDefined();

    // The same answer again, on a new sign-in of the same browser: its challenge was used up.
    const { page: second } = await loginPage(agent, { prompt: 'login' });
    const replayed = await agent.submit(second, formOf(second, '/passkey'), { credential: answer }, server.issuer);
    expect(replayed.page?.status).toBe(400);
    expect(textOf(replayed.page)).toContain('The passkey request expired or was used already. Try again.');

    for (const garbage of ['', 'null', '{', '{"id":"a","rawId":"a","type":"public-key","response":{}}', 'x'.repeat(70_000)]) {
      const fresh = await loginPage();
      const { result: refused } = await answerWithPasskey(fresh.agent, fresh.page, () => garbage);
      expect(refused.page?.status).toBe(400);
      // Past the form's 16 KB limit the body is not read at all.
      expect(textOf(refused.page)).toMatch(garbage.length > 16_000 ? /could not be read/ : /Your browser did not send a passkey/);
    }
  });

  test.each([
    ['without user verification', { unverified: true }, 'passkey_no_user_verification'],
    ['from another origin', { origin: 'https://evil.example.test' }, 'passkey_wrong_origin'],
    ['for another relying party', { rpId: 'evil.example.test' }, 'passkey_invalid'],
  ] as const)('an answer %s is refused', async (_case, ceremony, reason) => {
    const { user, passkey } = await userWithPasskey();
    const { agent, page } = await loginPage();
    const { result } = await answerWithPasskey(agent, page, (challenge) => passkey.assertion({ challenge, ...ceremony }));
    expect(result.page?.status).toBe(400);
    expect(textOf(result.page)).toContain('The passkey could not be checked. Try again.');
    expect(loginFormOf(result.page as Page)).toBeTruthy();
    expect(await auditEvents('sign_in', user.userId)).toContainEqual(expect.objectContaining({ outcome: 'failure', detail: expect.objectContaining({ via: 'passkey', reason }) }));
    expect(await server.services.passkeys.list(user.userId)).toEqual([expect.objectContaining({ lastUsedAt: null })]);
  });

  test('another key under the same credential id, a counter that went back, and a disabled account are refused', async () => {
    const { user, passkey } = await userWithPasskey({ counting: true });
    // Another key pair presenting the registered credential's id.
    const impostor = new SoftwarePasskey(user.userId, passkey.origin, { id: passkey.id });
    const first = await loginPage();
    const signedByOther = await answerWithPasskey(first.agent, first.page, (challenge) => impostor.assertion({ challenge }));
    expect(textOf(signedByOther.result.page)).toContain('The passkey could not be checked.');

    const ok = await loginPage();
    expect((await answerWithPasskey(ok.agent, ok.page, (challenge) => passkey.assertion({ challenge }))).result.redirectedTo).toBeDefined();
    passkey.counter = 0; // a clone of the authenticator, made before that sign-in
    const clone = await loginPage();
    const cloned = await answerWithPasskey(clone.agent, clone.page, (challenge) => passkey.assertion({ challenge }));
    expect(textOf(cloned.result.page)).toContain('The passkey could not be checked.');
    expect(await auditEvents('sign_in', user.userId)).toContainEqual(
      expect.objectContaining({ outcome: 'failure', detail: expect.objectContaining({ via: 'passkey', reason: 'passkey_counter_went_back' }) }),
    );

    passkey.counter = 100;
    await server.services.users.disable(user.userId);
    const disabled = await loginPage();
    const refused = await answerWithPasskey(disabled.agent, disabled.page, (challenge) => passkey.assertion({ challenge }));
    expect(refused.result.page?.status).toBe(400);
    expect(textOf(refused.result.page)).toContain('That passkey cannot be used to sign in here.');
  });

  test('an account locked by wrong passwords still signs in with its passkey; refused answers lock the IP (429)', async () => {
    const { user, passkey } = await userWithPasskey();
    const guesser = person();
    for (let attempt = 0; attempt < 3; attempt++) {
      const { page, form } = await openLoginPage(server, webClientId, guesser);
      await guesser.submit(page, form, { email: user.email, password: 'guess' }, server.issuer);
    }
    const { page: lockedPage, form } = await openLoginPage(server, webClientId, guesser);
    const locked = await guesser.submit(lockedPage, form, { email: user.email, password: PASSWORD }, server.issuer);
    expect(locked.page?.status).toBe(429);

    const owner = await loginPage();
    const { result } = await answerWithPasskey(owner.agent, owner.page, (challenge) => passkey.assertion({ challenge }));
    expect(result.redirectedTo?.href.startsWith(REDIRECT_URI)).toBe(true);

    const prober = person();
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 7; attempt++) {
      const { page } = await loginPage(prober);
      const { result: refused } = await answerWithPasskey(prober, page, (challenge) => passkey.assertion({ challenge, unverified: true }));
      statuses.push(refused.page?.status ?? 0);
    }
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    expect(statuses.slice(5)).toEqual([429, 429]);
  });

  test('after the password, the second step offers the account\'s own passkey in place of a code, and refuses another account\'s', async () => {
    const { user, passkey } = await userWithPasskey();
    const secret = newTotpSecret();
    await server.services.twoFactor.enroll(user.userId, secret, codeAt(secret, Date.now()));
    const other = await userWithPasskey();

    const signInAsUser = async () => {
      const { agent, page, request } = await loginPage();
      const { page: codePage } = await agent.submit(page, loginFormOf(page), { email: user.email, password: PASSWORD, remember: 'yes' }, server.issuer);
      expect(textOf(codePage)).toContain('Enter the 6-digit code');
      expect(textOf(codePage)).toContain('Use your passkey instead');
      return { agent, codePage: codePage as Page, request };
    };

    const first = await signInAsUser();
    const refused = await answerWithPasskey(first.agent, first.codePage, (challenge) => other.passkey.assertion({ challenge }));
    expect(refused.options.body?.allowCredentials).toEqual([expect.objectContaining({ id: passkey.id })]);
    expect(refused.result.page?.status).toBe(400);
    expect(textOf(refused.result.page)).toContain('That passkey is for another account. Use your own, or a code from your app.');
    expect(formOf(refused.result.page as Page, '/totp')).toBeTruthy();

    const { result } = await answerWithPasskey(first.agent, refused.result.page as Page, (challenge) => passkey.assertion({ challenge }));
    const tokens = await oidc.authorizationCodeGrant(webClient, result.redirectedTo as URL, {
      pkceCodeVerifier: first.request.codeVerifier,
      expectedState: first.request.state,
      expectedNonce: first.request.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, amr: ['hwk', 'user', 'mfa'], acr: MFA_ACR });
    // "Keep me signed in", ticked with the password, holds for the sign-in the passkey finished.
    expect(first.agent.setCookieLine('_session')).toMatch(/expires=/i);

    // Signed in with it, the account page says so of this browser's session.
    const { page: account } = await first.agent.follow(`${server.issuer}/account`, server.issuer);
    expect(textOf(account)).toContain('with a passkey');
  });

  test('an issuer whose host is an IP address offers no passkeys, and their routes answer 404', async () => {
    const plain = await startTestServer();
    try {
      const { clientId } = await createWebClient(plain);
      const { agent, page } = await openLoginPage(plain, clientId);
      expect(page.html).not.toContain('passkey');
      const uid = new URL(page.url).pathname.split('/')[2];
      const csrf = loginFormOf(page).fields.find((field) => field.name === 'csrf')?.value ?? '';
      const response = await agent.request(`${plain.issuer}/interaction/${uid}/passkey/options`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf }),
      });
      expect(response.status).toBe(404);
      expect(await response.text()).toContain('Passkeys are not available on this server.');
    } finally {
      await plain.close();
    }
  });
});

describe('on the embedded database without Redis (the newcomer’s default)', () => {
  test('a passkey is added on the account page and signs in to an app', async () => {
    const embedded = await startTestServer({ host: 'localhost', sql: 'pglite', redis: false });
    try {
      const user = await createUser(embedded);
      const passkey = new SoftwarePasskey(user.userId, new URL(embedded.issuer).origin);
      const agent = person();
      const { page: added } = await addPasskey(agent, await openAccount(agent, user.email, embedded), passkey, 'Laptop', embedded);
      expect(textOf(added)).toContain('Your passkey was added.');

      const { clientId, secret } = await createWebClient(embedded, { firstParty: true });
      const config = await discover(embedded, clientId, secret);
      const request = await codeFlowRequest(config);
      const browser = person();
      const { page } = await browser.follow(request.url.href, embedded.issuer);
      const { result: signedIn } = await answerWithPasskey(browser, page as Page, (challenge) => passkey.assertion({ challenge }), embedded);
      const tokens = await oidc.authorizationCodeGrant(config, signedIn.redirectedTo as URL, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
      expect(tokens.claims()).toMatchObject({ sub: user.userId, amr: ['hwk', 'user', 'mfa'] });
    } finally {
      await embedded.close();
    }
  });
});

describe('creating an account with a passkey instead of a password', () => {
  const TERMS = { TERMS_URL: 'https://example.test/terms', TERMS_VERSION: '7' };
  let open: TestServer;
  let app: oidc.Configuration;
  beforeAll(async () => {
    open = await startTestServer({ host: 'localhost', env: { REGISTRATION: 'open', REGISTRATION_ROLES: 'member', ...TERMS } });
    const { clientId, secret } = await createWebClient(open, { firstParty: true });
    app = await discover(open, clientId, secret);
  });
  afterAll(() => open.close());

  /** The app's request, its login page's "Create one", and the registration page, in a new browser. */
  async function registrationPage() {
    const agent = person();
    const request = await codeFlowRequest(app, { scope: 'openid email' });
    const { page: login } = await agent.follow(request.url.href, open.issuer);
    const href = /href="(\/interaction\/[^"]+\/register)"/.exec(login?.html ?? '')?.[1];
    const { page } = await agent.follow(`${open.issuer}${href}`, open.issuer);
    return { agent, request, page: page as Page };
  }

  test('the account and its passkey are made together, signed in with two factors and no password; the answer works once', async () => {
    const { agent, request, page } = await registrationPage();
    expect(page.html).toContain('Create account with a passkey instead');
    const csrf = csrfOf(page, '/register/passkey');
    const uid = new URL(page.url).pathname.split('/')[2];
    const options = (fields: Record<string, string>) => postForJson(agent, `/interaction/${uid}/register/passkey/options`, { csrf, ...fields }, open);

    const email = `passkey.${Date.now()}@example.test`;
    expect(await options({ email })).toMatchObject({ status: 400, body: { error: 'Accept the terms of service to create an account.' } });
    const taken = await createUser(open);
    expect(await options({ email: taken.email, terms: '7' })).toMatchObject({ status: 409, body: { error: expect.stringContaining('An account already uses this email.') } });
    expect(await options({ email: 'not an address', terms: '7' })).toMatchObject({ status: 400 });

    const offered = await options({ email, name: 'Pat Key', terms: '7' });
    expect(offered.status).toBe(200);
    const creation = offered.body as { challenge: string; user: { id: string; name: string }; authenticatorSelection: object };
    expect(creation).toMatchObject({ user: { name: email }, authenticatorSelection: { residentKey: 'required', userVerification: 'required' } });
    const userId = Buffer.from(creation.user.id, 'base64url').toString();
    const passkey = new SoftwarePasskey(userId, new URL(open.issuer).origin);
    const answer = JSON.stringify(passkey.attestation({ challenge: creation.challenge }));

    const created = await agent.submit(page, formOf(page, '/register/passkey'), { credential: answer }, open.issuer);
    if (!created.redirectedTo) throw new Error(`no account: ${textOf(created.page).slice(0, 300)}`);
    const tokens = await oidc.authorizationCodeGrant(app, created.redirectedTo, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
    expect(tokens.claims()).toMatchObject({ sub: userId, email, acr: MFA_ACR, amr: ['hwk', 'user', 'mfa'] });
    expect(await open.services.users.findById(userId)).toMatchObject({ email, name: 'Pat Key', roles: ['member'], passwordChangedAt: null, termsAccepted: { version: '7' } });
    expect((await open.services.passkeys.list(userId)).map((kept) => kept.userId)).toEqual([userId]);

    // Posted again, the answer finds the sign-in over.
    const replayed = await agent.submit(page, formOf(page, '/register/passkey'), { credential: answer }, open.issuer);
    expect(replayed.page?.status).toBe(400);
    expect(textOf(replayed.page)).toContain('You have already signed in to Web App.');
    expect(await open.services.users.findByEmail(email)).toMatchObject({ id: userId });

    // The passkey signs in from now on.
    const again = person();
    const next = await codeFlowRequest(app, { scope: 'openid' });
    const { page: login } = await again.follow(next.url.href, open.issuer);
    const { result } = await answerWithPasskey(again, login as Page, (challenge) => passkey.assertion({ challenge }), open);
    expect(result.redirectedTo?.searchParams.get('code')).toBeTruthy();
  });

  test('an answer that does not check out makes no account', async () => {
    const { agent, page } = await registrationPage();
    const uid = new URL(page.url).pathname.split('/')[2];
    const email = `broken.${Date.now()}@example.test`;
    const offered = await postForJson(agent, `/interaction/${uid}/register/passkey/options`, { csrf: csrfOf(page, '/register/passkey'), email, terms: '7' }, open);
    const creation = offered.body as { challenge: string; user: { id: string } };
    // Made for another origin: a phishing page's.
    const elsewhere = new SoftwarePasskey(Buffer.from(creation.user.id, 'base64url').toString(), 'https://login.example.evil');
    const refused = await agent.submit(page, formOf(page, '/register/passkey'), { credential: JSON.stringify(elsewhere.attestation({ challenge: creation.challenge })) }, open.issuer);
    expect(refused.page?.status).toBe(400);
    expect(textOf(refused.page)).toContain('The passkey could not be checked.');
    expect(refused.page?.html).toContain(`value="${email}"`);
    expect(await open.services.users.findByEmail(email)).toBeUndefined();
    // The options worked once: even a right answer to them is too late now.
    const right = new SoftwarePasskey(Buffer.from(creation.user.id, 'base64url').toString(), new URL(open.issuer).origin);
    const late = await agent.submit(page, formOf(page, '/register/passkey'), { credential: JSON.stringify(right.attestation({ challenge: creation.challenge })) }, open.issuer);
    expect(late.page?.status).toBe(400);
    expect(textOf(late.page)).toContain('Creating the passkey took too long, or was started in another tab.');
    expect(await open.services.users.findByEmail(email)).toBeUndefined();
    const garbage = await agent.submit(page, formOf(page, '/register/passkey'), { credential: '{"id":1}' }, open.issuer);
    expect(garbage.page?.status).toBe(400);
  });
});
