/**
 * A temporary password, as a Keycloak administrator sets one ("Temporary: on", the "Update Password" required
 * action): set through the admin API, it signs in once and holds the person at "Choose a new password" until they
 * have chosen their own, which must pass the rules and differ from the one they were given; then on to the app
 * with a code openid-client redeems. Asked of an account with an open session, `prompt=none` is
 * `interaction_required` and the next request shows the page without a login. The password grant, which has no
 * page, refuses it. Over HTTP, on Postgres and Redis.
 */
import * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { type AdminApi, adminApiOf } from '../support/admin-api.js';
import { PASSWORD, codeFlowRequest, createUser, createWebClient, discover, legacyPasswordClient } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page, textOf, UserAgent } from '../support/user-agent.js';

const TEMPORARY = 'given over the phone 1';
const CHOSEN = 'my very own passphrase';

let server: TestServer;
let rp: oidc.Configuration;
let adminApi: AdminApi;

beforeAll(async () => {
  server = await startTestServer();
  const web = await createWebClient(server, { firstParty: true });
  rp = await discover(server, web.clientId, web.secret);
  adminApi = await adminApiOf(server);
});
afterAll(() => server.close());

const admin = (method: string, path: string, body?: unknown) => adminApi.call(method, path, body);

/** The app's request, the login page, the password: the page the sign-in lands on. */
async function signIn(email: string, password: string, agent = new UserAgent()) {
  const request = await codeFlowRequest(rp, { scope: 'openid email' });
  const { page: login } = await agent.follow(request.url.href, server.issuer);
  const sent = await agent.submit(login as Page, formOf(login as Page, '/login'), { email, password }, server.issuer);
  return { agent, request, ...sent };
}

const redeem = (request: Awaited<ReturnType<typeof codeFlowRequest>>, callback: URL) =>
  oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });

test('a temporary password signs in once, to "Choose a new password"; the new one must pass the rules and differ, then the app gets its code', async () => {
  const user = await createUser(server);
  const set = await admin('POST', `/users/${user.userId}/password`, { password: TEMPORARY, temporary: true });
  expect(set).toMatchObject({ status: 200, body: { passwordChangeRequired: true } });

  const { agent, request, page: held } = await signIn(user.email, TEMPORARY);
  expect(held?.status).toBe(200);
  expect(textOf(held)).toContain('Choose a new password');
  expect(textOf(held)).toContain(`choose your own for ${user.email}`);
  const form = formOf(held as Page, '/update-password');

  for (const [values, reason] of [
    [{ password: CHOSEN, repeat: 'something else' }, 'The passwords do not match.'],
    [{ password: 'short', repeat: 'short' }, 'at least'],
    [{ password: TEMPORARY, repeat: TEMPORARY }, 'Choose a password other than your current one.'],
  ] as const) {
    const refused = await agent.submit(held as Page, form, values, server.issuer);
    expect(refused.page?.status).toBe(400);
    expect(textOf(refused.page)).toContain(reason);
  }
  // Reloading shows the same step: it is not skipped by going round it.
  const { page: again } = await agent.follow(held?.url as string, server.issuer);
  expect(textOf(again)).toContain('Choose a new password');

  const done = await agent.submit(held as Page, form, { password: CHOSEN, repeat: CHOSEN }, server.issuer);
  if (!done.redirectedTo) throw new Error(`the change did not reach the app: ${textOf(done.page).slice(0, 300)}`);
  const tokens = await redeem(request, done.redirectedTo);
  expect(tokens.claims()).toMatchObject({ sub: user.userId, email: user.email, amr: ['pwd'] });

  expect(await server.services.users.findById(user.userId)).toMatchObject({ passwordChangeRequired: false });
  expect(await server.services.users.verifyPassword(user.email, TEMPORARY)).toBeUndefined();
  expect(await server.services.users.verifyPassword(user.email, CHOSEN)).toBeDefined();
  await server.services.audit.flush();
  const changes = await queryAuditEvents(server.services.db, { type: 'user_password_changed', accountId: user.userId, limit: 10 });
  expect(changes.map((event) => event.detail)).toEqual(
    expect.arrayContaining([
      { by: 'admin-api', adminClientId: expect.any(String), temporary: true },
      { by: 'self', via: 'sign_in', clientId: rp.clientMetadata().client_id },
    ]),
  );

  // The next sign-in, with the chosen password, goes straight to the app.
  const next = await signIn(user.email, CHOSEN);
  expect(next.redirectedTo?.searchParams.get('code')).toBeTruthy();
});

test('asked of a signed-in account: prompt=none is interaction_required, and the next request shows the page without a login', async () => {
  const user = await createUser(server);
  const first = await signIn(user.email, PASSWORD);
  expect(first.redirectedTo?.searchParams.get('code')).toBeTruthy();

  expect(await admin('PATCH', `/users/${user.userId}`, { passwordChangeRequired: true })).toMatchObject({ status: 200, body: { passwordChangeRequired: true } });
  const silent = await codeFlowRequest(rp, { scope: 'openid', prompt: 'none' });
  const { redirectedTo } = await first.agent.follow(silent.url.href, server.issuer);
  expect(redirectedTo?.searchParams.get('error')).toBe('interaction_required');

  const request = await codeFlowRequest(rp, { scope: 'openid' });
  const { page } = await first.agent.follow(request.url.href, server.issuer);
  expect(textOf(page)).toContain('Choose a new password');
  expect(page?.html).not.toContain('/login"');
  // Cancelling goes back to the app with access_denied, and the change is still asked for.
  const cancelled = await first.agent.submit(page as Page, formOf(page as Page, '/abort'), {}, server.issuer);
  expect(cancelled.redirectedTo?.searchParams.get('error')).toBe('access_denied');
  expect((await server.services.users.findById(user.userId))?.passwordChangeRequired).toBe(true);

  // An administrator can lift it again.
  expect(await admin('PATCH', `/users/${user.userId}`, { passwordChangeRequired: false })).toMatchObject({ body: { passwordChangeRequired: false } });
  const lifted = await codeFlowRequest(rp, { scope: 'openid', prompt: 'none' });
  expect((await first.agent.follow(lifted.url.href, server.issuer)).redirectedTo?.searchParams.get('code')).toBeTruthy();
});

test('the password grant, which has no page, refuses a temporary password and says how to go on', async () => {
  const user = await createUser(server);
  await server.services.users.setPassword(user.email, TEMPORARY, { temporary: true });
  const legacy = await legacyPasswordClient(server);
  await expect(oidc.genericGrantRequest(legacy, 'password', { username: user.email, password: TEMPORARY, scope: 'openid' })).rejects.toMatchObject({
    error: 'invalid_grant',
    error_description: 'this account must choose a new password: sign in through the browser to choose it',
  });
});

test('a user created with a temporary password through the admin API is held the same way; a plain one is not', async () => {
  const email = `temp.${Date.now()}@example.test`;
  const created = await admin('POST', '/users', { email, password: TEMPORARY, temporaryPassword: true });
  expect(created).toMatchObject({ status: 201, body: { email, passwordChangeRequired: true } });
  expect(textOf((await signIn(email, TEMPORARY)).page)).toContain('Choose a new password');

  const plain = `plain.${Date.now()}@example.test`;
  expect(await admin('POST', '/users', { email: plain, password: TEMPORARY })).toMatchObject({ status: 201, body: { passwordChangeRequired: false } });
  expect((await signIn(plain, TEMPORARY)).redirectedTo?.searchParams.get('code')).toBeTruthy();
});
