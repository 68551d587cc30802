/**
 * AUDIT_TO_LOG as an operator's log pipeline sees it: a sign-in through the login page (a wrong password, then the
 * right one, by openid-client's code flow) becomes audit lines in the server's own log output at LOG_LEVEL=warn,
 * with who, from where and why, and never the password.
 */
import { Writable } from 'node:stream';
import { PASSWORD, createUser, createWebClient, discover, loginFormOf, openLoginPage, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const logDestination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  server = await startTestServer({ env: { AUDIT_TO_LOG: 'true', LOG_LEVEL: 'warn' }, logDestination });
});
afterAll(() => server.close());

test('sign-ins are audit lines in the log, whatever LOG_LEVEL, without the password', async () => {
  const user = await createUser(server);
  const web = await createWebClient(server, { firstParty: true });
  const { page, agent } = await openLoginPage(server, web.clientId);
  await agent.submit(page, loginFormOf(page), { email: user.email, password: 'not the password' }, server.issuer);
  await signInAndRedeem(await discover(server, web.clientId, web.secret), user);
  await server.services.audit.flush();

  const audit = lines.filter((line) => line.msg === 'audit').map((line) => line.audit as Record<string, unknown>);
  expect(audit).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ type: 'sign_in', outcome: 'failure', clientId: web.clientId, ip: expect.any(String), detail: expect.objectContaining({ email: user.email, reason: 'bad_credentials' }) }),
      expect.objectContaining({ type: 'sign_in', outcome: 'success', accountId: user.userId, clientId: web.clientId }),
    ]),
  );
  // Only audit lines: the request log stays at LOG_LEVEL.
  expect(lines.every((line) => line.msg === 'audit' || Number(line.level) >= 40)).toBe(true);
  expect(JSON.stringify(lines)).not.toContain(PASSWORD);
  expect(JSON.stringify(lines)).not.toContain('not the password');
});
