/**
 * The account page as a person uses it: /account sends a browser that is not signed in through the login page (of
 * the built-in `account-console` client) and back; there they change their password (the current one checked
 * under the sign-in limits, other sessions signed out when ticked), sign out another browser, and remove an app's
 * access. Forms without the session's CSRF token are refused.
 */
import { codeAt, newTotpSecret } from '../../src/accounts/totp.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { ACCOUNT_CONSOLE_CLIENT_ID } from '../../src/clients/account-console.js';
import { PASSWORD, codeFlowRequest, createUser, createWebClient, discover, loginFormOf, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type HtmlForm, type Page, UserAgent, parseForms } from '../support/user-agent.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const textOf = (page: Page | undefined) => (page?.html ?? '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
const formOf = (page: Page, action: string) => {
  const form = parseForms(page.html).find((candidate) => candidate.action === action);
  if (!form) throw new Error(`no ${action} form on ${page.url} (${page.status}): ${textOf(page).slice(0, 300)}`);
  return form;
};

/** Opens /account in `agent`, signing in on the way with `password`. */
async function openAccount(email: string, password = PASSWORD, agent = new UserAgent()) {
  const { page: login } = await agent.follow(`${server.issuer}/account`, server.issuer);
  if (!login) throw new Error('no login page');
  const { page } = await agent.submit(login, loginFormOf(login), { email, password }, server.issuer);
  if (!page) throw new Error('the sign-in left the server');
  return { agent, page };
}

/** A new user with an authenticator app, signed in at /account with the password and a code. */
async function openAccountWithApp() {
  const user = await createUser(server);
  const secret = newTotpSecret();
  const recovery = await server.services.twoFactor.enroll(user.userId, secret, codeAt(secret, Date.now()));
  if (!Array.isArray(recovery)) throw new Error('enrolment failed');
  const agent = new UserAgent();
  const { page: login } = await agent.follow(`${server.issuer}/account`, server.issuer);
  const { page: codePage } = await agent.submit(login as Page, loginFormOf(login as Page), { email: user.email, password: PASSWORD }, server.issuer);
  const codeForm = formOf(codePage as Page, `${new URL((codePage as Page).url).pathname}/totp`);
  const { page } = await agent.submit(codePage as Page, codeForm, { code: codeAt(secret, Date.now() + 30_000) }, server.issuer);
  if (!page) throw new Error('no account page');
  return { user, secret, recovery, agent, page };
}

test('a browser that is not signed in is sent through the login page, and comes back to its account', async () => {
  const user = await createUser(server);
  const { agent, page } = await openAccount(user.email);
  expect(page.url).toBe(`${server.issuer}/account`);
  expect(page.status).toBe(200);
  expect(textOf(page)).toContain(user.email);
  expect(textOf(page)).toContain('This browser');
  expect(textOf(page)).toContain('No app has access to your account.');
  // "Sign out" is the provider's logout, asked for by the page's own client.
  const { page: logout } = await agent.follow(`${server.issuer}/session/end?client_id=${ACCOUNT_CONSOLE_CLIENT_ID}`, server.issuer);
  expect(logout?.status).toBe(200);
  const { page: signedOut } = await agent.submit(logout as Page, parseForms((logout as Page).html)[0] as HtmlForm, { logout: 'yes' }, server.issuer);
  expect(signedOut?.status).toBe(200);
  const { page: again } = await agent.follow(`${server.issuer}/account`, server.issuer);
  expect(again && loginFormOf(again)).toBeTruthy();
});

test('the password is changed with the current one, and the other sessions are signed out', async () => {
  const user = await createUser(server);
  const other = await openAccount(user.email);
  const { agent, page } = await openAccount(user.email);
  expect(textOf(page)).toContain('Another browser');

  const wrong = await agent.submit(page, formOf(page, '/account/password'), { current: 'not it at all', password: 'a new long password', repeat: 'a new long password' }, server.issuer);
  expect(wrong.page?.status).toBe(400);
  expect(textOf(wrong.page)).toContain('That is not your current password.');
  const mismatch = await agent.submit(page, formOf(page, '/account/password'), { current: PASSWORD, password: 'a new long password', repeat: 'another one' }, server.issuer);
  expect(textOf(mismatch.page)).toContain('The passwords do not match.');

  const changed = await agent.submit(page, formOf(page, '/account/password'), { current: PASSWORD, password: 'a new long password', repeat: 'a new long password' }, server.issuer);
  expect(changed.page?.status).toBe(200);
  expect(textOf(changed.page)).toContain('Your password was changed, and your other sessions were signed out.');
  expect(textOf(changed.page)).not.toContain('Another browser');
  // The other browser is sent to sign in again; the new password opens the account, the old one does not.
  const { page: again } = await other.agent.follow(`${server.issuer}/account`, server.issuer);
  expect(again && loginFormOf(again)).toBeTruthy();
  expect((await server.services.users.verifyPassword(user.email, PASSWORD)) ?? null).toBeNull();
  expect((await openAccount(user.email, 'a new long password')).page.status).toBe(200);
});

test('another browser is signed out, and an app loses its access', async () => {
  const user = await createUser(server);
  const web = await createWebClient(server, { firstParty: true });
  const rp = await discover(server, web.clientId, web.secret);
  await signInAndRedeem(rp, user, { scope: 'openid email' });
  const { agent, page } = await openAccount(user.email);
  expect(textOf(page)).toContain('Web App');

  const ended = await agent.submit(page, formOf(page, '/account/sessions/end'), {}, server.issuer);
  expect(textOf(ended.page)).toContain('That session was signed out.');
  expect(await server.services.sessions.list(user.userId)).toHaveLength(1);

  const removed = await agent.submit(page, formOf(page, '/account/apps/remove'), {}, server.issuer);
  expect(textOf(removed.page)).toContain('The app no longer has access to your account.');
  const grants = await server.services.users.listGrants(user.userId);
  expect(grants.map((grant) => grant.clientId)).toEqual([ACCOUNT_CONSOLE_CLIENT_ID]);
});

test('a form without the session’s CSRF token is refused, and the built-in client id cannot be registered', async () => {
  const user = await createUser(server);
  const { agent, page } = await openAccount(user.email);
  const forged = await agent.submit(page, formOf(page, '/account/password'), { csrf: 'forged', current: PASSWORD, password: 'x'.repeat(12), repeat: 'x'.repeat(12) }, server.issuer);
  expect(forged.page?.status).toBe(403);
  const stranger = await new UserAgent().request(`${server.issuer}/account/password`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'current=x' });
  expect(stranger.status).toBe(401);
  await expect(
    server.services.clients.create({ type: 'spa', name: 'Impostor', clientId: ACCOUNT_CONSOLE_CLIENT_ID, redirectUris: ['https://evil.example.test/cb'] }),
  ).rejects.toThrow(/account page/);
});

test('with an authenticator app: new recovery codes for a code, and turning it off', async () => {
  const { user, recovery, agent, page } = await openAccountWithApp();
  expect(textOf(page)).toContain('10 recovery codes left');

  const wrong = await agent.submit(page, formOf(page, '/account/two-step/recovery-codes'), { code: '000000' }, server.issuer);
  expect(wrong.page?.status).toBe(400);
  // A recovery code proves it too; the old codes stop working and ten new ones are shown once.
  const fresh = await agent.submit(page, formOf(page, '/account/two-step/recovery-codes'), { code: recovery[1] as string }, server.issuer);
  expect(fresh.page?.status).toBe(200);
  const shown = [...(fresh.page?.html ?? '').matchAll(/<code>([^<]+)<\/code>/g)].map((match) => match[1] as string);
  expect(shown).toHaveLength(10);
  expect(await server.services.twoFactor.verify(user.userId, recovery[2] as string)).toBeUndefined();

  const off = await agent.submit(page, formOf(page, '/account/two-step/off'), { code: shown[0] as string }, server.issuer);
  expect(textOf(off.page)).toContain('Two-step verification is off.');
  expect((await server.services.users.findById(user.userId))?.totpEnrolledAt).toBeNull();
});

test('setting up two-step verification from the page asks only for the app (step-up), then comes back', async () => {
  const user = await createUser(server);
  const { agent, page } = await openAccount(user.email);
  expect(textOf(page)).toContain('Set up two-step verification');
  const { page: setUp } = await agent.follow(`${server.issuer}/account/two-step/set-up`, server.issuer);
  if (!setUp) throw new Error('no set-up page');
  expect(parseForms(setUp.html).some((form) => form.action.endsWith('/login'))).toBe(false);
  const key = /id="secret">([^<]+)</.exec(setUp.html)?.[1]?.replace(/\s/g, '') ?? '';
  const enrolled = await agent.submit(setUp, formOf(setUp, `${new URL(setUp.url).pathname}/totp/enroll`), { code: codeAt(key, Date.now()) }, server.issuer);
  const shownOn = enrolled.page as Page;
  const { page: back } = await agent.submit(shownOn, formOf(shownOn, `${new URL(setUp.url).pathname}/totp/continue`), {}, server.issuer);
  expect(back?.url).toMatch(/\/account\?done=two-step-on#two-step$/);
  expect(textOf(back)).toContain('Two-step verification is on.');
  expect(textOf(back)).toContain('10 recovery codes left');
});

test('the name apps are given is changed, or removed, from the page; one too long is refused', async () => {
  const user = await createUser(server);
  const { agent, page } = await openAccount(user.email);
  const save = (name: string) => agent.submit(page, formOf(page, '/account/name'), { name }, server.issuer);
  const { page: saved } = await save('  Ada Lovelace ');
  expect(textOf(saved)).toContain('Your name was changed.');
  expect(textOf(saved)).toContain(`Ada Lovelace · ${user.email}`);
  expect((await server.services.users.findById(user.userId))?.name).toBe('Ada Lovelace');
  expect((await save('x'.repeat(201))).page?.status).toBe(400);
  await save('');
  expect((await server.services.users.findById(user.userId))?.name).toBeNull();
});

test('the authenticator app is replaced from the page (a new phone): the old one works until the new one’s first code', async () => {
  const { user, recovery, agent, page } = await openAccountWithApp();

  const storedSecret = async () => (await server.services.db('users').where({ id: user.userId }).first('totp_secret')).totp_secret as string;
  const before = await storedSecret();
  const wrong = await agent.submit(page, formOf(page, '/account/two-step/replace'), { code: '000000' }, server.issuer);
  expect(wrong.page?.status).toBe(400);
  expect(textOf(wrong.page)).toContain('That code is not right. Enter the code your old app shows now, or a recovery code.');
  // A recovery code proves it (the phone with the old app is lost).
  const { page: setUp } = await agent.submit(page, formOf(page, '/account/two-step/replace'), { code: recovery[0] as string }, server.issuer);
  if (!setUp) throw new Error('no set-up page');
  expect(textOf(setUp)).toContain('Set up a new authenticator app');
  const newSecret = /id="secret">([^<]+)</.exec(setUp.html)?.[1]?.replaceAll(' ', '') ?? '';
  expect(newSecret).toMatch(/^[A-Z2-7]{32}$/);
  // Until the new app's first code, the old app's secret is the one kept.
  expect(await storedSecret()).toBe(before);

  const mistyped = await agent.submit(setUp, formOf(setUp, '/account/two-step/replace/confirm'), { code: '123456' }, server.issuer);
  expect(mistyped.page?.status).toBe(400);
  expect(textOf(mistyped.page)).toContain('That code is not right. Enter the code your new app shows now.');
  const tampered = await agent.submit(setUp, formOf(setUp, '/account/two-step/replace/confirm'), { sealed: 'not.sealed.for.you', code: codeAt(newSecret, Date.now()) }, server.issuer);
  expect(tampered.page?.status).toBe(400);

  const { page: done } = await agent.submit(setUp, formOf(setUp, '/account/two-step/replace/confirm'), { code: codeAt(newSecret, Date.now()) }, server.issuer);
  expect(textOf(done)).toContain('Your new app is set up');
  expect([...(done?.html ?? '').matchAll(/<code>([^<]+)<\/code>/g)]).toHaveLength(10);
  expect(await storedSecret()).not.toBe(before);
  expect(await server.services.twoFactor.verify(user.userId, codeAt(newSecret, Date.now() + 30_000))).toBe('otp');
  expect(await server.services.twoFactor.verify(user.userId, recovery[1] as string)).toBeUndefined();
});

test('"Download your data" gives the person one JSON file of what is held about them, with no secret in it', async () => {
  const { user, secret: totpSecret, recovery, agent, page } = await openAccountWithApp();
  await server.services.users.update(user.userId, { attributes: { desk: 'B-12' } });
  const { clientId, secret } = await createWebClient(server);
  await signInAndRedeem(await discover(server, clientId, secret), user, { scope: 'openid email', agent });

  const { page: file } = await agent.submit(page, formOf(page, '/account/data'), {}, server.issuer);
  expect(file?.status).toBe(200);
  expect(file?.headers.get('content-type')).toMatch(/^application\/json/);
  expect(file?.headers.get('content-disposition')).toMatch(/^attachment; filename="account-data-\d{4}-\d{2}-\d{2}\.json"$/);
  expect(file?.headers.get('cache-control')).toBe('no-store');
  const data = JSON.parse(file?.html ?? '{}');
  expect(data).toMatchObject({
    issuer: server.issuer,
    account: { id: user.userId, email: user.email, roles: ['reader'], attributes: { desk: 'B-12' }, twoStepVerification: { enabled: true, recoveryCodesLeft: 10 } },
    passkeys: [],
    linkedSignIns: [],
    // The account page is an app of its own (account-console), with the grant its sign-in made.
    apps: expect.arrayContaining([expect.objectContaining({ app: 'Web App', clientId, scopes: expect.arrayContaining(['openid', 'email']) })]),
  });
  expect(data.sessions.length).toBeGreaterThanOrEqual(1);
  expect(data.activity.map((entry: { event: string }) => entry.event)).toEqual(expect.arrayContaining(['sign_in', 'user_updated']));
  // Nothing that signs in or decrypts: no password hash, no authenticator secret, no recovery code.
  const text = file?.html ?? '';
  expect(text).not.toMatch(/\$2[aby]\$/);
  expect(text).not.toContain(totpSecret);
  for (const code of recovery) expect(text).not.toContain(code);

  const { page: withoutToken } = await agent.follow(`${server.issuer}/account/data`, server.issuer, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=forged' });
  expect(withoutToken?.status).toBe(403);
  await server.services.audit.flush();
  const [exported] = await queryAuditEvents(server.services.db, { type: 'account_data_exported', accountId: user.userId });
  expect(exported).toMatchObject({ outcome: 'success', detail: { by: 'self' } });
});

test('"Recent sign-ins" lists the account’s attempts, newest first: a refused password from another browser, then its own sign-in, each with app, address and browser', async () => {
  const user = await createUser(server);
  const { clientId, secret } = await createWebClient(server, { firstParty: true });
  const app = await discover(server, clientId, secret);
  // Someone else, in Firefox on Windows, guesses at the password at the app's login page.
  const firefox: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('user-agent', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0');
    return fetch(input, { ...init, headers });
  };
  const stranger = new UserAgent(firefox);
  const request = await codeFlowRequest(app, { scope: 'openid' });
  const { page: login } = await stranger.follow(request.url.href, server.issuer);
  const guessed = await stranger.submit(login as Page, loginFormOf(login as Page), { email: user.email, password: 'a wrong guess' }, server.issuer);
  expect(guessed.page?.status).toBe(400);
  const { page } = await openAccount(user.email);
  const section = textOf(page).split('Recent sign-ins')[1]?.split('Apps with access')[0] ?? '';
  const signedIn = section.indexOf('Signed in');
  const refused = section.indexOf('Refused: wrong password');
  expect(signedIn).toBeGreaterThan(-1);
  expect(refused).toBeGreaterThan(signedIn);
  expect(section).toMatch(/Signed in ?, .+ UTC with password, to this account page, from 127\.0\.0\.1 /);
  expect(section).toMatch(/Refused: wrong password ?, .+ UTC to Web App, from 127\.0\.0\.1, Firefox on Windows/);
  expect(page.html).toContain('class="refused"');
});
