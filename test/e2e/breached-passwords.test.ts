/**
 * PASSWORD_BREACH_CHECK as people meet it, against a stand-in for Have I Been Pwned's range API (this machine has
 * no internet): a password known from a breach is refused on the account page and by the admin API with the
 * reason, and only its hash's first five characters leave the server; while the range API is down, passwords go
 * through and the log says each went unchecked, and /metrics counts lookups by outcome. Over HTTP, on Postgres and Redis.
 */
import { Writable } from 'node:stream';
import { type AdminApi, adminApiOf } from '../support/admin-api.js';
import { type PwnedPasswords, prefixOf, startPwnedPasswords } from '../support/pwned-passwords.js';
import { scrapeMetrics } from '../support/metrics.js';
import { PASSWORD, createUser, loginFormOf } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page, textOf, UserAgent } from '../support/user-agent.js';

const BREACHED = 'monkey see monkey do 99';

let api: PwnedPasswords;
let server: TestServer;
let adminApi: AdminApi;
const logged: Record<string, unknown>[] = [];

beforeAll(async () => {
  api = await startPwnedPasswords([BREACHED]);
  const logDestination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logged.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  server = await startTestServer({ env: { PASSWORD_BREACH_CHECK: 'true', PASSWORD_BREACH_API: api.rangeApi, LOG_LEVEL: 'warn' }, logDestination });
  adminApi = await adminApiOf(server);
});
afterAll(async () => {
  await server.close();
  await api.close();
});

/** The account page's password form, sent from a fresh sign-in. */
async function changeOnPage(email: string, next: string) {
  const agent = new UserAgent();
  const { page: login } = await agent.follow(`${server.issuer}/account`, server.issuer);
  const { page } = await agent.submit(login as Page, loginFormOf(login as Page), { email, password: PASSWORD }, server.issuer);
  const { page: sent } = await agent.submit(page as Page, formOf(page as Page, '/account/password'), { current: PASSWORD, password: next, repeat: next }, server.issuer);
  return sent as Page;
}

const lookups = (outcome: string) => `authz_password_breach_lookups_total{outcome="${outcome}"}`;

test('a breached password is refused on the account page and by the admin API; only its hash prefix is asked about', async () => {
  const user = await createUser(server);
  const metrics = await scrapeMetrics(server);
  const refused = await changeOnPage(user.email, BREACHED);
  expect(refused.status).toBe(400);
  expect(textOf(refused)).toContain('That password has appeared in a data breach, so it is among the first that are tried: choose another.');
  expect(await adminApi.call('POST', `/users/${user.userId}/password`, { password: BREACHED })).toEqual({
    status: 400,
    body: { error: 'invalid_request', error_description: 'password: that password has appeared in a data breach, so it is among the first that are tried: choose another' },
  });
  expect(api.requests.map((request) => request.path)).toContain(`/range/${prefixOf(BREACHED)}`);
  expect(api.requests.every((request) => /^\/range\/[0-9A-F]{5}$/.test(request.path) && request.padding === 'true')).toBe(true);

  expect(textOf(await changeOnPage(user.email, 'not in any breach at all'))).toContain('Your password was changed');
  // Each refusal counts once (the form's check and the store's share a lookup); the accepted one at least once.
  const grown = await metrics.since();
  expect(grown(lookups('breached'))).toBe(2);
  expect(grown(lookups('clean'))).toBeGreaterThanOrEqual(1);
  expect(grown(lookups('unavailable'))).toBe(0);
});

test('while the range API is down, a password goes through unchecked, and the log says so', async () => {
  const user = await createUser(server);
  const metrics = await scrapeMetrics(server);
  api.failing = true;
  try {
    expect(textOf(await changeOnPage(user.email, 'monkey see monkey do 98'))).toContain('Your password was changed');
  } finally {
    api.failing = false;
  }
  expect(logged).toContainEqual(
    expect.objectContaining({ level: 40, reason: 'the range API answered 503', msg: 'a new password was not looked up among breached passwords: it went through unchecked' }),
  );
  expect((await metrics.since())(lookups('unavailable'))).toBeGreaterThanOrEqual(1);
});
