/**
 * PASSWORD_MAX_AGE as people meet it (Keycloak's "Expire Password"): a password older than the setting holds the
 * sign-in made with it at "Choose a new password", which says why, until a new one is chosen; a passkey sign-in is
 * not held for a password it did not use; the account page says when the password expires; the password grant,
 * which has no page, refuses an expired one. openid-client is the app; over HTTP, on Postgres and Redis.
 */
import { hash } from 'bcrypt';
import * as oidc from 'openid-client';
import { parseUserFile } from '../../src/accounts/user-import.js';
import { adminApiOf } from '../support/admin-api.js';
import { PASSWORD, codeFlowRequest, createUser, createWebClient, discover, legacyPasswordClient } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { SoftwarePasskey } from '../support/software-passkey.js';
import { formOf, type Page, textOf, UserAgent } from '../support/user-agent.js';

const DAY = 86_400_000;
const CHOSEN = 'a brand new passphrase 2027';

let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  // localhost: passkeys need a host name, not an IP address, as their relying party.
  server = await startTestServer({ host: 'localhost', env: { PASSWORD_MAX_AGE: '90d' } });
  const web = await createWebClient(server, { firstParty: true });
  rp = await discover(server, web.clientId, web.secret);
});
afterAll(() => server.close());

/** Makes the user's password `days` old. */
const agePassword = (userId: string, days: number) =>
  server.services.db('users')
    .where({ id: userId })
    .update({ password_changed_at: new Date(Date.now() - days * DAY) });

/** The app's request and its login page in `agent`. */
async function loginPage(agent = new UserAgent()) {
  const request = await codeFlowRequest(rp, { scope: 'openid email' });
  const { page } = await agent.follow(request.url.href, server.issuer);
  return { agent, request, page: page as Page };
}

async function signIn(email: string, password: string) {
  const { agent, request, page } = await loginPage();
  const sent = await agent.submit(page, formOf(page, '/login'), { email, password }, server.issuer);
  return { agent, request, ...sent };
}

const redeem = (request: Awaited<ReturnType<typeof codeFlowRequest>>, callback: URL) =>
  oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });

test('a password younger than PASSWORD_MAX_AGE signs straight in; the account page and the admin API say when it expires', async () => {
  const user = await createUser(server);
  await agePassword(user.userId, 89);
  const { agent, redirectedTo } = await signIn(user.email, PASSWORD);
  expect(redirectedTo?.searchParams.get('code')).toBeTruthy();
  const { page } = await agent.follow(`${server.issuer}/account`, server.issuer);
  expect(textOf(page)).toMatch(/Your password expires on .+ UTC: change it before then/);
  const { status, body } = await (await adminApiOf(server)).call('GET', `/users/${user.userId}`);
  expect(status).toBe(200);
  expect(Date.parse(body.passwordExpiresAt) - Date.parse(body.passwordChangedAt)).toBe(90 * DAY);
});

test('an expired password holds the sign-in at "Choose a new password", saying why; the new one must differ, then the app gets its code', async () => {
  const user = await createUser(server);
  await agePassword(user.userId, 91);
  const { agent, request, page: held } = await signIn(user.email, PASSWORD);
  expect(held?.status).toBe(200);
  expect(textOf(held)).toContain('Your password has expired: passwords here are changed every 90 days.');
  const form = formOf(held as Page, '/update-password');
  const same = await agent.submit(held as Page, form, { password: PASSWORD, repeat: PASSWORD }, server.issuer);
  expect(same.page?.status).toBe(400);
  expect(textOf(same.page)).toContain('Choose a password other than your current one.');

  const done = await agent.submit(held as Page, form, { password: CHOSEN, repeat: CHOSEN }, server.issuer);
  if (!done.redirectedTo) throw new Error(`the change did not reach the app: ${textOf(done.page).slice(0, 300)}`);
  expect((await redeem(request, done.redirectedTo)).claims()).toMatchObject({ sub: user.userId, amr: ['pwd'] });
  const changedAt = (await server.services.users.findById(user.userId))?.passwordChangedAt;
  expect(Date.now() - (changedAt?.getTime() ?? 0)).toBeLessThan(60_000);
  expect((await signIn(user.email, CHOSEN)).redirectedTo?.searchParams.get('code')).toBeTruthy();
});

test('a session signed in with the password is held once it expires (prompt=none: interaction_required)', async () => {
  const user = await createUser(server);
  const first = await signIn(user.email, PASSWORD);
  expect(first.redirectedTo?.searchParams.get('code')).toBeTruthy();
  await agePassword(user.userId, 100);
  const silent = await codeFlowRequest(rp, { scope: 'openid', prompt: 'none' });
  expect((await first.agent.follow(silent.url.href, server.issuer)).redirectedTo?.searchParams.get('error')).toBe('interaction_required');
  const { page } = await first.agent.follow((await codeFlowRequest(rp, { scope: 'openid' })).url.href, server.issuer);
  expect(textOf(page)).toContain('Your password has expired');
});

test('a passkey sign-in is not held for an expired password it did not use', async () => {
  const email = `expired-with-passkey-${Date.now()}@example.test`;
  const id = crypto.randomUUID();
  const passkey = new SoftwarePasskey(id, new URL(server.issuer).origin);
  const line = { id, email, passwordHash: await hash(PASSWORD, 4), passkeys: [{ id: passkey.id, publicKey: passkey.coseKey().toString('base64url'), name: 'Laptop' }] };
  await server.services.users.importUsers(parseUserFile(JSON.stringify(line)));
  await agePassword(id, 365);

  const { agent, request, page } = await loginPage();
  const uid = new URL(page.url).pathname.split('/')[2];
  const csrf = formOf(page, '/passkey').fields.find((field) => field.name === 'csrf')?.value ?? '';
  const options = await agent.request(`${server.issuer}/interaction/${uid}/passkey/options`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ csrf }),
  });
  const { challenge } = (await options.json()) as { challenge: string };
  const answered = await agent.submit(page, formOf(page, '/passkey'), { credential: JSON.stringify(passkey.assertion({ challenge })) }, server.issuer);
  if (!answered.redirectedTo) throw new Error(`no code: ${textOf(answered.page).slice(0, 300)}`);
  expect((await redeem(request, answered.redirectedTo)).claims()).toMatchObject({ sub: id, amr: ['hwk', 'user', 'mfa'] });

  // The same account signing in with its password is held.
  expect(textOf((await signIn(email, PASSWORD)).page)).toContain('Your password has expired');
});

test('the password grant, which has no page, refuses an expired password and says how to go on', async () => {
  const user = await createUser(server);
  await agePassword(user.userId, 91);
  const legacy = await legacyPasswordClient(server);
  await expect(oidc.genericGrantRequest(legacy, 'password', { username: user.email, password: PASSWORD, scope: 'openid' })).rejects.toMatchObject({
    error: 'invalid_grant',
    error_description: 'this account’s password has expired: sign in through the browser to choose a new one',
  });
});
