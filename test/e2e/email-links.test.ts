/**
 * Links sent by mail, as a person uses them, with the mail going over SMTP to a real SMTP server: "Forgot your
 * password?" on the login page → a link by mail → a new password (the link works once, the old password stops
 * working, the sessions end when asked, a sign-in lock is lifted); the same answer and no mail for an address no
 * account has; a limit on how many links an address gets; and confirming an address from the account page.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { adminApiIndicator } from '../../src/admin/index.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { ACCOUNT_CONSOLE_CLIENT_ID } from '../../src/clients/account-console.js';
import { type CaughtMail, type MailCatcher, linkIn, startMailCatcher } from '../support/mail-catcher.js';
import { PASSWORD, createUser, createWebClient, discover, loginFormOf, openLoginPage } from '../support/relying-party.js';
import { scrapeMetrics } from '../support/metrics.js';
import { waitFor } from '../support/process.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page, textOf, UserAgent } from '../support/user-agent.js';

let mail: MailCatcher;
let server: TestServer;
let webClientId: string;

beforeAll(async () => {
  mail = await startMailCatcher();
  server = await startTestServer({ env: { SMTP_URL: mail.url, MAIL_FROM: 'Accounts <accounts@example.test>', LOGIN_MAX_FAILURES: '3' } });
  webClientId = (await createWebClient(server, { firstParty: true })).clientId;
});
afterAll(async () => {
  await server.close();
  await mail.close();
});

const NEW_PASSWORD = 'a brand new passphrase';
const auditEvents = async (type: string, accountId?: string) => {
  await server.services.audit.flush();
  return (await queryAuditEvents(server.services.db, { type, limit: 1000 })).filter((event) => !accountId || event.accountId === accountId);
};

/** From the login page: "Forgot your password?", the address, "Check your email". */
async function askForResetLink(email: string, agent = new UserAgent()) {
  const { page: login } = await openLoginPage(server, webClientId, agent);
  const forgot = /href="(\/account\/password-reset\?from=[^"]+)"/.exec(login.html)?.[1];
  if (!forgot) throw new Error('the login page offers no "Forgot your password?"');
  const { page: form } = await agent.follow(`${server.issuer}${forgot.replaceAll('&amp;', '&')}`, server.issuer);
  if (!form) throw new Error('no reset page');
  const { page: sent } = await agent.submit(form, formOf(form, '/account/password-reset'), { email }, server.issuer);
  return { agent, login, form, sent: sent as Page };
}

/** Opens the mail's link and sets `password` through its form. */
async function resetWith(received: CaughtMail, password: string, options: { endSessions?: boolean } = {}, agent = new UserAgent()) {
  const link = linkIn(received, `${server.issuer}/account/password-reset/new?token=`);
  const { page } = await agent.follow(link, server.issuer);
  if (!page) throw new Error('the link left the server');
  if (page.status !== 200) return { page };
  const values: Record<string, string> = { password, repeat: password };
  const form = formOf(page, '/account/password-reset/new');
  if (options.endSessions === false) form.fields = form.fields.filter((field) => field.name !== 'endSessions');
  const { page: done } = await agent.submit(page, form, values, server.issuer);
  return { page: done as Page, link };
}

async function signInAtAccount(email: string, password: string, agent = new UserAgent()) {
  const { page: login } = await agent.follow(`${server.issuer}/account`, server.issuer);
  const { page } = await agent.submit(login as Page, loginFormOf(login as Page), { email, password }, server.issuer);
  return { agent, page: page as Page };
}

test('a forgotten password is reset through a link sent by mail: once, and the old password and sessions end', async () => {
  const user = await createUser(server);
  await server.services.users.update(user.email, { emailVerified: false });
  const before = await signInAtAccount(user.email, PASSWORD);
  expect(before.page.url).toBe(`${server.issuer}/account`);

  const { sent, login } = await askForResetLink(user.email);
  expect(sent.status).toBe(200);
  expect(textOf(sent)).toContain(`If an account uses ${user.email}, we sent it a link`);
  // The way back to the sign-in that was left.
  const uid = /\/interaction\/([^/"]+)\/login/.exec(login.html)?.[1];
  expect(sent.html).toContain(`href="/interaction/${uid}"`);

  const received = await mail.next(user.email);
  expect(received.from).toBe('accounts@example.test');
  expect(received.subject).toBe(`Reset your password at ${new URL(server.issuer).host}`);
  expect(received.text).toContain('open this link within 30 minutes. It works once');
  const link = linkIn(received, `${server.issuer}/account/password-reset/new?token=`);
  expect(received.html).toContain(`href="${link}"`);

  // Opening the link (as a mail scanner would) uses nothing; a weak or mismatched password is refused on the form.
  const agent = new UserAgent();
  const { page: form } = await agent.follow(link, server.issuer);
  expect(form?.status).toBe(200);
  expect(textOf(form)).toContain(`for ${user.email}`);
  const mismatch = await agent.submit(form as Page, formOf(form as Page, '/account/password-reset/new'), { password: NEW_PASSWORD, repeat: 'something else' }, server.issuer);
  expect(mismatch.page?.status).toBe(400);
  expect(textOf(mismatch.page)).toContain('The passwords do not match.');

  const { page: done } = await resetWith(received, NEW_PASSWORD);
  expect(done.status).toBe(200);
  expect(textOf(done)).toContain(`The password of ${user.email} is changed, and every session was signed out.`);

  // The old password fails, the new one works, the session from before is gone, and the address is now confirmed.
  expect((await server.services.users.verifyPassword(user.email, PASSWORD)) ?? null).toBeNull();
  expect(await server.services.users.verifyPassword(user.email, NEW_PASSWORD)).toMatchObject({ emailVerified: true });
  const { page: again } = await before.agent.follow(`${server.issuer}/account`, server.issuer);
  expect(again && loginFormOf(again)).toBeTruthy();

  // The link worked once.
  const reused = await resetWith(received, 'yet another passphrase');
  expect(reused.page.status).toBe(400);
  expect(textOf(reused.page)).toContain('This link has expired or was used already.');
  expect(await server.services.users.verifyPassword(user.email, NEW_PASSWORD)).toBeTruthy();

  expect(await auditEvents('email_link_requested', user.userId)).toEqual([
    expect.objectContaining({ outcome: 'success', detail: { purpose: 'password_reset', email: user.email } }),
  ]);
  expect(await auditEvents('mail_sent', user.userId)).toEqual([expect.objectContaining({ outcome: 'success', detail: { kind: 'password_reset', to: user.email } })]);
  expect(await auditEvents('password_reset', user.userId)).toEqual([expect.objectContaining({ outcome: 'success', detail: { endedSessions: true } })]);
});

test('an address no account has gets the same answer, and no mail', async () => {
  const nobody = `nobody.${Date.now()}@example.test`;
  const { sent } = await askForResetLink(nobody);
  expect(sent.status).toBe(200);
  expect(textOf(sent)).toContain(`If an account uses ${nobody}, we sent it a link`);
  const requested = await waitFor(async () => (await auditEvents('email_link_requested')).find((event) => event.detail?.email === nobody), 'the request audited');
  expect(requested).toMatchObject({ outcome: 'failure', detail: { reason: 'unknown_email' } });
  expect(mail.received.filter((each) => each.to === nobody)).toEqual([]);
});

test('a link is void once the password changed another way, or once it expired; sessions stay when not ticked', async () => {
  const user = await createUser(server);
  await askForResetLink(user.email);
  await askForResetLink(user.email);
  const [first, second] = [await mail.next(user.email), await mail.next(user.email)];

  // An administrator set a password after the first link was sent: that link no longer works.
  await server.services.users.setPassword(user.email, 'set by an administrator');
  const stale = await resetWith(first, NEW_PASSWORD);
  expect(stale.page.status).toBe(400);
  expect(await server.services.users.verifyPassword(user.email, 'set by an administrator')).toBeTruthy();

  // The second link, expired: its form is refused too.
  await server.services.db('email_links').update({ expires_at: new Date(Date.now() - 1000) });
  expect((await resetWith(second, NEW_PASSWORD)).page.status).toBe(400);

  // A fresh link, with "Sign out of every session" unticked: the session signed in before stays.
  const signedIn = await signInAtAccount(user.email, 'set by an administrator');
  await askForResetLink(user.email);
  const { page: done } = await resetWith(await mail.next(user.email), NEW_PASSWORD, { endSessions: false });
  expect(textOf(done)).toContain(`The password of ${user.email} is changed.`);
  const { page: still } = await signedIn.agent.follow(`${server.issuer}/account`, server.issuer);
  expect(still?.url).toBe(`${server.issuer}/account`);
  expect(textOf(still)).toContain(user.email);
});

test('when the sessions cannot be ended just then, the password is changed all the same, and the page says what to do', async () => {
  const user = await createUser(server);
  await askForResetLink(user.email);
  const received = await mail.next(user.email);
  // The session store fails this moment (as Redis would while it fails over).
  const store = server.services.sessions.store;
  const findByAccount = store.findByAccount;
  store.findByAccount = async () => {
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
  };
  try {
    const { page } = await resetWith(received, NEW_PASSWORD);
    expect(page.status).toBe(200);
    expect(textOf(page)).toContain(`The password of ${user.email} is changed.`);
    expect(textOf(page)).toContain('Your sessions could not be signed out just now.');
  } finally {
    store.findByAccount = findByAccount;
  }
  expect(await server.services.users.verifyPassword(user.email, NEW_PASSWORD)).toBeTruthy();
  expect(await auditEvents('password_reset', user.userId)).toEqual([
    expect.objectContaining({ detail: { endedSessions: false, sessionsNotEnded: 'store_unavailable' } }),
  ]);
});

test('a reset lifts the sign-in lock that guessing at the old password put on the account', async () => {
  const user = await createUser(server);
  const { agent, page } = await openLoginPage(server, webClientId);
  let last: Page | undefined = page;
  for (let attempt = 0; attempt < 4; attempt++) {
    ({ page: last } = await agent.submit(page, loginFormOf(page), { email: user.email, password: `wrong guess ${attempt}` }, server.issuer));
  }
  expect(last?.status).toBe(429);
  expect(await server.services.locks.accountLockedUntil(user.email)).not.toBeNull();

  await askForResetLink(user.email);
  await resetWith(await mail.next(user.email), NEW_PASSWORD);
  expect(await server.services.locks.accountLockedUntil(user.email)).toBeNull();
  const { page: account } = await signInAtAccount(user.email, NEW_PASSWORD);
  expect(account.url).toBe(`${server.issuer}/account`);
  expect(await auditEvents('user_unlocked', user.userId)).toEqual([expect.objectContaining({ detail: expect.objectContaining({ by: 'self' }) })]);
});

test('an address gets at most five links an hour; the sixth ask is refused with when to try again', async () => {
  const user = await createUser(server);
  for (let ask = 0; ask < 5; ask++) expect((await askForResetLink(user.email)).sent.status).toBe(200);
  const { sent } = await askForResetLink(user.email);
  expect(sent.status).toBe(429);
  expect(Number(sent.headers.get('retry-after'))).toBeGreaterThan(3000);
  expect(textOf(sent)).toMatch(/Too many links were asked for\. Try again in (\d+ minutes|1 hour)\./);
  for (let received = 0; received < 5; received++) await mail.next(user.email);
});

test('bad input gets a page with a reason, never a server error', async () => {
  const agent = new UserAgent();
  const post = (path: string, body: Record<string, string>) =>
    agent.request(`${server.issuer}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
  expect((await post('/account/password-reset', { email: 'not an address' })).status).toBe(400);
  expect((await post('/account/password-reset', {})).status).toBe(400);
  expect((await post('/account/password-reset/new', { token: 'made-up', password: NEW_PASSWORD, repeat: NEW_PASSWORD })).status).toBe(400);
  expect((await post('/account/password-reset/new', { token: 'x'.repeat(43), password: NEW_PASSWORD, repeat: NEW_PASSWORD })).status).toBe(400);
  expect((await post('/account/password-reset/new', {})).status).toBe(400);
  expect((await post('/account/email/confirm', { token: '\u0000' })).status).toBe(400);
  expect((await agent.request(`${server.issuer}/account/password-reset/new?token=a&token=b`)).status).toBe(400);
  expect((await agent.request(`${server.issuer}/account/email/confirm`)).status).toBe(400);
  // The link back to a sign-in takes only what an interaction id looks like.
  const page = await (await agent.request(`${server.issuer}/account/password-reset?from=%22%3E%3Cscript%3E`)).text();
  expect(page).not.toContain('<script>');
  expect(page).not.toContain('Back to sign in');
});

test('an address is confirmed from the account page, by the button the mail link opens', async () => {
  const user = await createUser(server);
  await server.services.users.update(user.email, { emailVerified: false });
  const { agent, page } = await signInAtAccount(user.email, PASSWORD);
  expect(textOf(page)).toContain(`${user.email}: not confirmed yet.`);
  const { page: sent } = await agent.submit(page, formOf(page, '/account/email/send-confirmation'), {}, server.issuer);
  expect(textOf(sent)).toContain('We sent you a link: open it to confirm your email address.');

  const received = await mail.next(user.email);
  expect(received.subject).toBe(`Confirm your email address at ${new URL(server.issuer).host}`);
  const link = linkIn(received, `${server.issuer}/account/email/confirm?token=`);
  // Opening the link shows a button; only pressing it confirms (a mail scanner opening links confirms nothing).
  const other = new UserAgent();
  const { page: confirm } = await other.follow(link, server.issuer);
  expect(confirm?.status).toBe(200);
  expect((await server.services.users.findById(user.userId))?.emailVerified).toBe(false);
  const { page: confirmed } = await other.submit(confirm as Page, formOf(confirm as Page, '/account/email/confirm'), {}, server.issuer);
  expect(textOf(confirmed)).toContain(`${user.email} is confirmed.`);
  expect((await server.services.users.findById(user.userId))?.emailVerified).toBe(true);

  const { page: account } = await agent.follow(`${server.issuer}/account`, server.issuer);
  expect(textOf(account)).toContain(`${user.email}: confirmed.`);
  expect(account?.html).not.toContain('/account/email/send-confirmation');
  // A used link is refused, and the reserved client's sign-in was what opened the page.
  expect((await other.submit(confirm as Page, formOf(confirm as Page, '/account/email/confirm'), {}, server.issuer)).page?.status).toBe(400);
  expect(ACCOUNT_CONSOLE_CLIENT_ID).toBe('account-console');
});

test('the address is changed from the account page: the current password, a link to the new address and its button; the old address is told', async () => {
  const user = await createUser(server);
  const other = await createUser(server);
  const newAddress = `moved.${Date.now()}@example.test`;
  const { agent, page } = await signInAtAccount(user.email, PASSWORD);
  const change = (values: Record<string, string>) => agent.submit(page, formOf(page, '/account/email/change'), values, server.issuer);

  const wrong = await change({ email: newAddress, current: 'not my password' });
  expect(wrong.page?.status).toBe(400);
  expect(textOf(wrong.page)).toContain('That is not your current password.');
  const taken = await change({ email: other.email, current: PASSWORD });
  expect(taken.page?.status).toBe(409);
  expect(textOf(taken.page)).toContain('Another account uses that address.');
  expect(textOf((await change({ email: user.email.toUpperCase(), current: PASSWORD })).page)).toContain('That is your address already.');

  const sent = await change({ email: newAddress, current: PASSWORD });
  expect(textOf(sent.page)).toContain('We sent a link to your new address: open it to make the change.');
  const received = await mail.next(newAddress);
  expect(received.subject).toBe(`Confirm your new email address at ${new URL(server.issuer).host}`);
  expect(received.text).toContain(`Someone signed in as ${user.email}`);
  const link = linkIn(received, `${server.issuer}/account/email/change/confirm?token=`);

  // Opening the link changes nothing; its button does.
  const phone = new UserAgent();
  const { page: confirm } = await phone.follow(link, server.issuer);
  expect(textOf(confirm)).toContain(`${newAddress} replaces ${user.email}`);
  expect((await server.services.users.findById(user.userId))?.email).toBe(user.email);
  const { page: changed } = await phone.submit(confirm as Page, formOf(confirm as Page, '/account/email/change/confirm'), {}, server.issuer);
  expect(textOf(changed)).toContain(`Your account's address is now ${newAddress}`);
  expect(await server.services.users.findById(user.userId)).toMatchObject({ email: newAddress, emailVerified: true });

  // The old address is told, without a link; the new address signs in, the old one no longer does.
  const notice = await mail.next(user.email);
  expect(notice.subject).toBe(`Your email address at ${new URL(server.issuer).host} was changed`);
  expect(notice.text).toContain(`was changed from ${user.email} to ${newAddress}`);
  expect(notice.text).not.toContain('token=');
  expect(await server.services.users.verifyPassword(newAddress, PASSWORD)).toBeTruthy();
  expect((await server.services.users.verifyPassword(user.email, PASSWORD)) ?? null).toBeNull();
  expect((await phone.submit(confirm as Page, formOf(confirm as Page, '/account/email/change/confirm'), {}, server.issuer)).page?.status).toBe(400);
  expect(await auditEvents('user_email_changed', user.userId)).toEqual([expect.objectContaining({ detail: expect.objectContaining({ by: 'self', from: user.email, to: newAddress }) })]);
});

test('a new address another account took after the link was sent is refused when confirmed, and nothing changes', async () => {
  const user = await createUser(server);
  const wanted = `wanted.${Date.now()}@example.test`;
  const { agent, page } = await signInAtAccount(user.email, PASSWORD);
  await agent.submit(page, formOf(page, '/account/email/change'), { email: wanted, current: PASSWORD }, server.issuer);
  const link = linkIn(await mail.next(wanted), `${server.issuer}/account/email/change/confirm?token=`);
  await server.services.users.create({ email: wanted, password: PASSWORD });
  const phone = new UserAgent();
  const { page: confirm } = await phone.follow(link, server.issuer);
  const { page: refused } = await phone.submit(confirm as Page, formOf(confirm as Page, '/account/email/change/confirm'), {}, server.issuer);
  expect(refused?.status).toBe(409);
  expect(textOf(refused)).toContain('Another account uses that address now');
  expect((await server.services.users.findById(user.userId))?.email).toBe(user.email);
});

describe('when the mail server cannot be reached', () => {
  let unreachable: TestServer;
  beforeAll(async () => {
    // A port nothing listens on: the connection is refused at once.
    unreachable = await startTestServer({ env: { SMTP_URL: 'smtp://127.0.0.1:9' } });
  });
  afterAll(() => unreachable.close());

  test('the person gets the same answer, and the failure is logged and audited', async () => {
    const user = await createUser(unreachable);
    const agent = new UserAgent();
    const { page: form } = await agent.follow(`${unreachable.issuer}/account/password-reset`, unreachable.issuer);
    const { page: sent } = await agent.submit(form as Page, formOf(form as Page, '/account/password-reset'), { email: user.email }, unreachable.issuer);
    expect(sent?.status).toBe(200);
    const failures = async () => {
      await unreachable.services.audit.flush();
      return queryAuditEvents(unreachable.services.db, { type: 'mail_sent', limit: 10 });
    };
    const failure = await waitFor(async () => (await failures())[0], 'the failed mail audited', 15_000);
    expect(failure).toMatchObject({ outcome: 'failure', accountId: user.userId, detail: { kind: 'password_reset', reason: 'not_sent' } });
    const metrics = await scrapeMetrics(unreachable);
    expect(metrics.before('authz_mail_sent_total{kind="password_reset",outcome="failure"}')).toBe(1);
  });

  test('an administrator who sends a link through the admin API is told: 502 mail_not_sent, with the reason', async () => {
    const user = await createUser(unreachable);
    const { client, secret } = await unreachable.services.clients.create({ type: 'service', name: 'ops', scope: 'admin' });
    const rp = await discover(unreachable, client.clientId, secret as string);
    const { access_token: token } = await oidc.clientCredentialsGrant(rp, { resource: adminApiIndicator(unreachable.issuer) });
    const response = await fetch(`${unreachable.url}/admin/v1/users/${user.userId}/password-reset-mail`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(502);
    expect(await response.json()).toEqual({ error: 'mail_not_sent', error_description: expect.stringMatching(new RegExp(`^the mail to ${user.email.replaceAll('.', '\\.')} was not sent: .*ECONNREFUSED`)) });
  });
});

describe('in development without SMTP_URL', () => {
  let development: TestServer;
  const logged: Record<string, unknown>[] = [];
  beforeAll(async () => {
    const logDestination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logged.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    development = await startTestServer({ env: { LOG_LEVEL: 'info' }, logDestination });
  });
  afterAll(() => development.close());

  test('each mail is written to the log, so a newcomer can follow its link with no mail server', async () => {
    const user = await createUser(development);
    const agent = new UserAgent();
    const { page: form } = await agent.follow(`${development.issuer}/account/password-reset`, development.issuer);
    await agent.submit(form as Page, formOf(form as Page, '/account/password-reset'), { email: user.email }, development.issuer);
    const entry = await waitFor(() => logged.find((line) => line.to === user.email), 'the mail in the log');
    expect(entry).toMatchObject({ msg: 'mail written to the log, not sent: SMTP_URL is not set', subject: `Reset your password at ${new URL(development.issuer).host}` });
    const link = String(entry.text).split(/\s+/).find((word) => word.startsWith(`${development.issuer}/account/password-reset/new?token=`));
    const { page } = await agent.follow(link ?? 'http://missing.invalid/', development.issuer);
    expect(page?.status).toBe(200);
    expect(textOf(page)).toContain(`for ${user.email}`);
  });
});

describe('with MAIL_TEMPLATES_DIR', () => {
  let branded: TestServer;
  let templates: string;
  beforeAll(async () => {
    templates = await mkdtemp(path.join(tmpdir(), 'authz-mail-templates-'));
    // A deployment's own subject and text, in its language; the HTML body is not given, so the built-in one is used.
    await writeFile(path.join(templates, 'password-reset.subject.njk'), 'Réinitialisez votre mot de passe — {{ site }}\n');
    await writeFile(path.join(templates, 'password-reset.txt.njk'), 'Bonjour {{ to }}, voici votre lien (valable {{ validFor }}) :\n\n{{ link }}\n');
    branded = await startTestServer({ env: { SMTP_URL: mail.url, MAIL_TEMPLATES_DIR: templates } });
  });
  afterAll(async () => {
    await branded.close();
    await rm(templates, { recursive: true, force: true });
  });

  test('a template found there is used, and any other comes from views/mail/', async () => {
    const user = await createUser(branded);
    const agent = new UserAgent();
    const { page: form } = await agent.follow(`${branded.issuer}/account/password-reset`, branded.issuer);
    await agent.submit(form as Page, formOf(form as Page, '/account/password-reset'), { email: user.email }, branded.issuer);
    const received = await mail.next(user.email);
    expect(received.subject).toBe(`Réinitialisez votre mot de passe — ${new URL(branded.issuer).host}`);
    expect(received.text).toMatch(new RegExp(`^Bonjour ${user.email.replaceAll('.', '\\.')}, voici votre lien \\(valable 30 minutes\\) :`));
    expect(received.html).toContain('Choose a new password');
    const { page } = await agent.follow(linkIn(received, `${branded.issuer}/account/password-reset/new?token=`), branded.issuer);
    expect(page?.status).toBe(200);
  });
});

describe('on the embedded database without Redis (the newcomer’s default)', () => {
  let embedded: TestServer;
  beforeAll(async () => {
    embedded = await startTestServer({ sql: 'pglite', redis: false, env: { SMTP_URL: mail.url } });
  });
  afterAll(() => embedded.close());

  test('a password is reset through the mailed link, under the same limits', async () => {
    const user = await createUser(embedded);
    const agent = new UserAgent();
    const ask = async () => {
      const { page: form } = await agent.follow(`${embedded.issuer}/account/password-reset`, embedded.issuer);
      return (await agent.submit(form as Page, formOf(form as Page, '/account/password-reset'), { email: user.email }, embedded.issuer)).page;
    };
    expect((await ask())?.status).toBe(200);
    const link = linkIn(await mail.next(user.email), `${embedded.issuer}/account/password-reset/new?token=`);
    const { page: form } = await agent.follow(link, embedded.issuer);
    const { page: done } = await agent.submit(form as Page, formOf(form as Page, '/account/password-reset/new'), { password: NEW_PASSWORD, repeat: NEW_PASSWORD }, embedded.issuer);
    expect(textOf(done)).toContain(`The password of ${user.email} is changed`);
    expect(await embedded.services.users.verifyPassword(user.email, NEW_PASSWORD)).toBeTruthy();
    for (let more = 0; more < 4; more++) expect((await ask())?.status).toBe(200);
    expect((await ask())?.status).toBe(429);
  });
});
