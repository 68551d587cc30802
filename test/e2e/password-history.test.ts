/**
 * PASSWORD_HISTORY=3 (Keycloak's "Not Recently Used" policy) as people meet it: on the account page a new password
 * may not be the current one nor one of the two before it, and only once the current password has been given; a
 * reset link refuses them too and stays usable for a better one; an administrator's new password, temporary or
 * not, is held to it, and so is the person's own after a temporary one. Over HTTP, on Postgres and Redis, with the
 * mail going to a real SMTP server.
 */
import * as oidc from 'openid-client';
import { type AdminApi, adminApiOf } from '../support/admin-api.js';
import { type MailCatcher, linkIn, startMailCatcher } from '../support/mail-catcher.js';
import { PASSWORD, codeFlowRequest, createUser, createWebClient, discover, loginFormOf } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page, textOf, UserAgent } from '../support/user-agent.js';

const RECENT = 'That password is one of your last 3: choose another.';

let mail: MailCatcher;
let server: TestServer;
let adminApi: AdminApi;

beforeAll(async () => {
  mail = await startMailCatcher();
  server = await startTestServer({ env: { PASSWORD_HISTORY: '3', SMTP_URL: mail.url, MAIL_FROM: 'accounts@example.test' } });
  adminApi = await adminApiOf(server);
});
afterAll(async () => {
  await server.close();
  await mail.close();
});

/** /account, signed in on the way. */
async function openAccount(email: string, password: string) {
  const agent = new UserAgent();
  const { page: login } = await agent.follow(`${server.issuer}/account`, server.issuer);
  const { page } = await agent.submit(login as Page, loginFormOf(login as Page), { email, password }, server.issuer);
  if (page?.url !== `${server.issuer}/account`) throw new Error(`the account page did not open: ${textOf(page).slice(0, 300)}`);
  return { agent, page };
}

/** The account page's password form, sent. */
async function changeOnPage(account: { agent: UserAgent; page: Page }, current: string, next: string) {
  const { page } = await account.agent.submit(account.page, formOf(account.page, '/account/password'), { current, password: next, repeat: next }, server.issuer);
  return page as Page;
}

test('the account page refuses the current password and the two before it, once the current one is given; four back is allowed', async () => {
  const user = await createUser(server);
  const account = await openAccount(user.email, PASSWORD);
  // Without the current password nothing is compared with the old ones: the history is no oracle for a session.
  const guessing = await changeOnPage(account, 'not my password', PASSWORD);
  expect(guessing.status).toBe(400);
  expect(textOf(guessing)).toContain('That is not your current password.');
  expect(textOf(guessing)).not.toContain(RECENT);

  const same = await changeOnPage(account, PASSWORD, PASSWORD);
  expect(same.status).toBe(400);
  expect(textOf(same)).toContain(RECENT);
  expect(textOf(await changeOnPage(account, PASSWORD, 'second long password'))).toContain('Your password was changed');
  expect(textOf(await changeOnPage(account, 'second long password', 'third long password'))).toContain('Your password was changed');
  for (const old of [PASSWORD, 'second long password', 'third long password']) {
    const refused = await changeOnPage(account, 'third long password', old);
    expect(refused.status).toBe(400);
    expect(textOf(refused)).toContain(RECENT);
  }
  expect(await server.services.users.verifyPassword(user.email, 'third long password')).toBeDefined();
  expect(textOf(await changeOnPage(account, 'third long password', 'fourth long password'))).toContain('Your password was changed');
  expect(textOf(await changeOnPage(account, 'fourth long password', PASSWORD))).toContain('Your password was changed');
});

test('a reset link refuses a recent password and still works for another', async () => {
  const user = await createUser(server);
  await server.services.users.changePassword(user.userId, 'the one before it');
  const agent = new UserAgent();
  const { page: form } = await agent.follow(`${server.issuer}/account/password-reset`, server.issuer);
  await agent.submit(form as Page, formOf(form as Page, '/account/password-reset'), { email: user.email }, server.issuer);
  const link = linkIn(await mail.next(user.email), `${server.issuer}/account/password-reset/new?token=`);

  const { page: newPassword } = await agent.follow(link, server.issuer);
  for (const old of [PASSWORD, 'the one before it']) {
    const refused = await agent.submit(newPassword as Page, formOf(newPassword as Page, '/account/password-reset/new'), { password: old, repeat: old }, server.issuer);
    expect(refused.page?.status).toBe(400);
    expect(textOf(refused.page)).toContain(RECENT);
  }
  const { page: done } = await agent.submit(newPassword as Page, formOf(newPassword as Page, '/account/password-reset/new'), { password: 'quite new indeed', repeat: 'quite new indeed' }, server.issuer);
  expect(done?.status).toBe(200);
  expect(await server.services.users.verifyPassword(user.email, 'quite new indeed')).toBeDefined();
});

test("an administrator's password is held to it, and so is the person's own after a temporary one", async () => {
  const user = await createUser(server);
  const reused = await adminApi.call('POST', `/users/${user.userId}/password`, { password: PASSWORD });
  expect(reused).toEqual({ status: 400, body: { error: 'invalid_request', error_description: "password: that is one of the account's last 3 passwords (PASSWORD_HISTORY)" } });
  expect(await adminApi.call('POST', `/users/${user.userId}/password`, { password: 'given over the phone 1', temporary: true })).toMatchObject({ status: 200 });

  const web = await createWebClient(server, { firstParty: true });
  const rp = await discover(server, web.clientId, web.secret);
  const request = await codeFlowRequest(rp, { scope: 'openid' });
  const agent = new UserAgent();
  const { page: login } = await agent.follow(request.url.href, server.issuer);
  const { page: held } = await agent.submit(login as Page, formOf(login as Page, '/login'), { email: user.email, password: 'given over the phone 1' }, server.issuer);
  expect(textOf(held)).toContain('Choose a new password');
  const refused = await agent.submit(held as Page, formOf(held as Page, '/update-password'), { password: PASSWORD, repeat: PASSWORD }, server.issuer);
  expect(refused.page?.status).toBe(400);
  expect(textOf(refused.page)).toContain(RECENT);

  const done = await agent.submit(held as Page, formOf(held as Page, '/update-password'), { password: 'my very own passphrase', repeat: 'my very own passphrase' }, server.issuer);
  if (!done.redirectedTo) throw new Error(`the change did not reach the app: ${textOf(done.page).slice(0, 300)}`);
  const tokens = await oidc.authorizationCodeGrant(rp, done.redirectedTo, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
  expect(tokens.claims()?.sub).toBe(user.userId);
});

test('PASSWORD_HISTORY_DAYS (Keycloak’s "Not Recently Used (In Days)"): a password had within the days is refused, however many changes ago; an older one is allowed', async () => {
  const byDays = await startTestServer({ env: { PASSWORD_HISTORY_DAYS: '365' } });
  try {
    const user = await createUser(byDays);
    const { users } = byDays.services;
    for (const next of ['second password here', 'third password here', 'fourth password here', 'fifth password here']) await users.changePassword(user.userId, next);
    // Four changes back, within the year: refused on the account page, with the rule said.
    const agent = new UserAgent();
    const { page: login } = await agent.follow(`${byDays.issuer}/account`, byDays.issuer);
    const { page } = await agent.submit(login as Page, loginFormOf(login as Page), { email: user.email, password: 'fifth password here' }, byDays.issuer);
    const form = formOf(page as Page, '/account/password');
    const refused = await agent.submit(page as Page, form, { current: 'fifth password here', password: PASSWORD, repeat: PASSWORD }, byDays.issuer);
    expect(refused.page?.status).toBe(400);
    expect(textOf(refused.page)).toContain('That password is your current one or one you had in the last 365 days: choose another.');
    const admin = await adminApiOf(byDays);
    expect(await admin.call('POST', `/users/${user.userId}/password`, { password: 'third password here' })).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: "password: that is the account's current password or one it had in the last 365 days (PASSWORD_HISTORY_DAYS)" },
    });
    expect(Number((await byDays.services.db('password_history').where({ user_id: user.userId }).count({ count: '*' }))[0]?.count)).toBe(4);

    // Replaced more than a year ago: allowed again, and forgotten at the next change.
    await byDays.services.db('password_history').where({ user_id: user.userId }).update({ replaced_at: new Date(Date.now() - 400 * 86_400_000) });
    const allowed = await agent.submit(page as Page, form, { current: 'fifth password here', password: PASSWORD, repeat: PASSWORD }, byDays.issuer);
    expect(textOf(allowed.page)).toContain('Your password was changed');
    const kept = await byDays.services.db('password_history').where({ user_id: user.userId }).select('password_hash');
    expect(kept).toHaveLength(1);
    expect(await users.passwords.matches('fifth password here', String(kept[0]?.password_hash))).toBe(true);
  } finally {
    await byDays.close();
  }
});
