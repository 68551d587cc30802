/**
 * Deleting a user (the right to erasure), by an administrator through the admin API and by the person on their
 * account page (ACCOUNT_DELETION): the account is gone with its consents, refresh tokens and sessions; the app's
 * refresh token and access token stop working (openid-client), the password signs in no more, the address can be
 * used again by a new account with another `sub`, and the deletion is audited. The account page offers it only
 * when turned on, and asks for the password and an "I understand" first.
 */
import * as oidc from 'openid-client';
import { type AdminApi, adminApiOf } from '../support/admin-api.js';
import { PASSWORD, createUser, createWebClient, discover, loginFormOf, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page, textOf, UserAgent } from '../support/user-agent.js';

let server: TestServer;
let rp: oidc.Configuration;
let adminApi: AdminApi;

beforeAll(async () => {
  server = await startTestServer({ env: { ACCOUNT_DELETION: 'true' } });
  const web = await createWebClient(server, { firstParty: true });
  rp = await discover(server, web.clientId, web.secret);
  adminApi = await adminApiOf(server);
});
afterAll(() => server.close());

const admin = (method: string, path: string) => adminApi.call(method, path);

const auditOf = async (type: string, accountId: string) => {
  await server.services.audit.flush();
  return server.services.db('audit_events').where({ type, account_id: accountId });
};

/** A user signed in to the app, holding its tokens (with a refresh token). */
async function signedInUser() {
  const user = await createUser(server);
  const { tokens } = await signInAndRedeem(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
  return { user, tokens };
}

async function expectGone(user: { email: string; userId: string }, tokens: oidc.TokenEndpointResponse) {
  expect(await server.services.users.findById(user.userId)).toBeUndefined();
  expect(await server.services.users.verifyPassword(user.email, PASSWORD)).toBeUndefined();
  await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
  await expect(oidc.fetchUserInfo(rp, tokens.access_token, user.userId)).rejects.toThrow();
  expect(await server.services.db('oidc_models').where({ account_id: user.userId })).toEqual([]);
}

test('an administrator deletes a user: tokens, refresh and password stop working, the address is free again, audited', async () => {
  const { user, tokens } = await signedInUser();
  const response = await admin('DELETE', `/users/${user.userId}`);
  expect(response.status).toBe(204);
  await expectGone(user, tokens);
  expect(await auditOf('user_deleted', user.userId)).toEqual([expect.objectContaining({ detail: expect.objectContaining({ by: 'admin-api', email: user.email }) })]);
  expect((await admin('DELETE', `/users/${user.userId}`)).status).toBe(404);

  const again = await server.services.users.create({ email: user.email, password: PASSWORD });
  expect(again.id).not.toBe(user.userId);
});

test('a person deletes their own account on the account page, with the password and "I understand"', async () => {
  const { user, tokens } = await signedInUser();
  const agent = new UserAgent();
  const { page: login } = await agent.follow(`${server.issuer}/account`, server.issuer);
  const { page } = await agent.submit(login as Page, loginFormOf(login as Page), { email: user.email, password: PASSWORD }, server.issuer);
  expect(textOf(page)).toContain('Delete your account');
  const form = formOf(page as Page, '/account/delete');

  const unticked = await agent.submit(page as Page, form, { current: PASSWORD }, server.issuer);
  expect(unticked.page?.status).toBe(400);
  expect(textOf(unticked.page)).toContain('Tick the box to say you understand that this cannot be undone.');
  const wrong = await agent.submit(page as Page, form, { current: 'not my password', understood: 'yes' }, server.issuer);
  expect(wrong.page?.status).toBe(400);
  expect(textOf(wrong.page)).toContain('That is not your current password.');
  expect(await server.services.users.findById(user.userId)).toBeDefined();

  const deleted = await agent.submit(page as Page, form, { current: PASSWORD, understood: 'yes' }, server.issuer);
  expect(deleted.page?.status).toBe(200);
  expect(textOf(deleted.page)).toContain('Your account was deleted');
  await expectGone(user, tokens);
  expect(await auditOf('user_deleted', user.userId)).toEqual([expect.objectContaining({ detail: expect.objectContaining({ by: 'self' }) })]);

  // The browser is signed in no more: the account page asks for a sign-in again.
  const { page: after } = await agent.follow(`${server.issuer}/account`, server.issuer);
  expect(after && loginFormOf(after)).toBeTruthy();
});

test('an account without a password deletes itself right after signing in, not from a session signed in long ago', async () => {
  const user = await createUser(server);
  const agent = new UserAgent();
  const { page: login } = await agent.follow(`${server.issuer}/account`, server.issuer);
  await agent.submit(login as Page, loginFormOf(login as Page), { email: user.email, password: PASSWORD }, server.issuer);
  // As if it signed in with a passkey or another provider: no password to give.
  await server.services.users.removePassword(user.userId);
  const { page } = await agent.follow(`${server.issuer}/account`, server.issuer);
  const form = formOf(page as Page, '/account/delete');
  expect(form.fields.map((field) => field.name)).not.toContain('current');

  const session = await server.server.provider.Session.find(agent.cookies.get('_session') ?? '');
  if (!session?.loginTs) throw new Error('no session');
  session.loginTs -= 600;
  await session.save(3600);
  const stale = await agent.submit(page as Page, form, { understood: 'yes' }, server.issuer);
  expect(stale.page?.status).toBe(403);
  expect(stale.page?.html).toContain('href="/account/sign-in-again/delete"');
  expect(await server.services.users.findById(user.userId)).toBeDefined();

  session.loginTs += 600;
  await session.save(3600);
  const deleted = await agent.submit(page as Page, form, { understood: 'yes' }, server.issuer);
  expect(textOf(deleted.page)).toContain('Your account was deleted');
  expect(await server.services.users.findById(user.userId)).toBeUndefined();
});

test('without ACCOUNT_DELETION the page offers no deletion, and a forged form is refused', async () => {
  const plain = await startTestServer();
  try {
    const user = await createUser(plain);
    const agent = new UserAgent();
    const { page: login } = await agent.follow(`${plain.issuer}/account`, plain.issuer);
    const { page } = await agent.submit(login as Page, loginFormOf(login as Page), { email: user.email, password: PASSWORD }, plain.issuer);
    expect(textOf(page)).not.toContain('Delete your account');
    const forged = await agent.submit(page as Page, { ...formOf(page as Page, '/account/password'), action: '/account/delete' }, { current: PASSWORD, understood: 'yes' }, plain.issuer);
    expect(forged.page?.status).toBe(404);
    expect(await plain.services.users.findById(user.userId)).toBeDefined();
  } finally {
    await plain.close();
  }
});
