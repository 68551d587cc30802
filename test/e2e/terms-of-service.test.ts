/**
 * Terms of service (TERMS_URL, TERMS_VERSION; Keycloak's "Terms and Conditions" required action) as people and
 * apps meet them: after the login, an account that has not accepted this version is held at "Terms of service"
 * (its link, Accept, Decline); declining sends the app `access_denied`, accepting goes on to the code, once;
 * `prompt=none` gets `interaction_required`; a new version asks again; registering accepts them; the password
 * grant, which has no page, refuses an account that has not. openid-client is the app, over HTTP on Postgres
 * and Redis.
 */
import * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { PASSWORD, codeFlowRequest, createUser, createWebClient, discover, legacyPasswordClient } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page, textOf, UserAgent } from '../support/user-agent.js';

const TERMS_URL = 'https://shop.example.test/legal/terms';
const VERSION = '2026-12-01';

let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer({ env: { TERMS_URL, TERMS_VERSION: VERSION, REGISTRATION: 'open' } });
  const web = await createWebClient(server, { firstParty: true });
  rp = await discover(server, web.clientId, web.secret);
});
afterAll(() => server.close());

/** The app's request in `agent`, through the login page when it shows one: where the browser lands. */
async function authorize(agent: UserAgent, user?: { email: string }, extra: Record<string, string> = {}) {
  const request = await codeFlowRequest(rp, { scope: 'openid email', ...extra });
  const opened = await agent.follow(request.url.href, server.issuer);
  const landed = user && opened.page && /\/login"/.test(opened.page.html) ? await agent.submit(opened.page, formOf(opened.page, '/login'), { email: user.email, password: PASSWORD }, server.issuer) : opened;
  return { request, ...landed };
}

const redeem = (request: Awaited<ReturnType<typeof codeFlowRequest>>, callback: URL) =>
  oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });

test('after the login the terms are shown; declining sends the app access_denied; accepting goes on, once, and is audited', async () => {
  const user = await createUser(server);
  const agent = new UserAgent();
  const held = await authorize(agent, user);
  expect(held.page?.status).toBe(200);
  expect(textOf(held.page)).toContain('Terms of service');
  expect(textOf(held.page)).toContain(`Read the terms of service, then accept them to continue as ${user.email}.`);
  expect(held.page?.html).toContain(`href="${TERMS_URL}"`);
  expect(textOf(held.page)).toContain(`version ${VERSION}`);

  // prompt=none, with the session the login left: the app hears the person must act.
  const silent = await authorize(agent, undefined, { prompt: 'none' });
  expect(silent.redirectedTo?.searchParams.get('error')).toBe('interaction_required');

  const declined = await agent.submit(held.page as Page, formOf(held.page as Page, '/abort'), {}, server.issuer);
  expect(declined.redirectedTo?.searchParams.get('error')).toBe('access_denied');
  expect((await server.services.users.findById(user.userId))?.termsAccepted).toBeNull();

  const again = await authorize(agent);
  expect(textOf(again.page)).toContain('Terms of service');
  const accepted = await agent.submit(again.page as Page, formOf(again.page as Page, '/accept-terms'), {}, server.issuer);
  if (!accepted.redirectedTo) throw new Error(`accepting did not reach the app: ${textOf(accepted.page).slice(0, 300)}`);
  expect((await redeem(again.request, accepted.redirectedTo)).claims()?.sub).toBe(user.userId);
  expect(await server.services.users.findById(user.userId)).toMatchObject({ termsAccepted: { version: VERSION, at: expect.any(Date) } });

  // The next request goes straight to the app; the account page says what was accepted.
  const next = await authorize(agent);
  expect(next.redirectedTo?.searchParams.get('code')).toBeTruthy();
  const { page: account } = await agent.follow(`${server.issuer}/account`, server.issuer);
  expect(textOf(account)).toMatch(new RegExp(`You accepted the terms of service \\(version ${VERSION}\\) on .+ UTC\\.`));
  await server.services.audit.flush();
  const events = await queryAuditEvents(server.services.db, { type: 'terms_accepted', accountId: user.userId, limit: 10 });
  expect(events.map((event) => event.detail)).toEqual([expect.objectContaining({ version: VERSION })]);
});

test('a new version asks again, saying the terms changed; a page still showing the old version accepts nothing', async () => {
  const user = await createUser(server);
  await server.services.db('users').where({ id: user.userId }).update({ terms_accepted_version: '2025-01-01', terms_accepted_at: new Date('2025-01-02') });
  const agent = new UserAgent();
  const held = await authorize(agent, user);
  expect(textOf(held.page)).toContain('The terms of service have changed since you last accepted them.');
  const stale = await agent.submit(held.page as Page, formOf(held.page as Page, '/accept-terms'), { version: '2025-01-01' }, server.issuer);
  expect(stale.page?.status).toBe(409);
  expect(textOf(stale.page)).toContain(`version ${VERSION}`);
  expect((await server.services.users.findById(user.userId))?.termsAccepted?.version).toBe('2025-01-01');
  const accepted = await agent.submit(held.page as Page, formOf(held.page as Page, '/accept-terms'), {}, server.issuer);
  expect(accepted.redirectedTo?.searchParams.get('code')).toBeTruthy();
});

test('registering accepts them (and is refused unless ticked); the password grant refuses an account that has not', async () => {
  const agent = new UserAgent();
  const { page: login } = await authorize(agent);
  const href = /href="(\/interaction\/[^"]+\/register)"/.exec(login?.html ?? '')?.[1];
  const { page: form } = await agent.follow(`${server.issuer}${href}`, server.issuer);
  expect(form?.html).toContain(`href="${TERMS_URL}"`);
  const email = `terms.${Date.now()}@example.test`;
  const fields = { email, password: PASSWORD, repeat: PASSWORD };
  const unticked = await agent.submit(form as Page, formOf(form as Page, '/register'), fields, server.issuer);
  expect(unticked.page?.status).toBe(400);
  expect(textOf(unticked.page)).toContain('Accept the terms of service to create an account.');
  expect(await server.services.users.findByEmail(email)).toBeUndefined();
  const ticked = await agent.submit(form as Page, formOf(form as Page, '/register'), { ...fields, terms: VERSION }, server.issuer);
  expect(ticked.redirectedTo?.searchParams.get('code')).toBeTruthy();
  expect(await server.services.users.findByEmail(email)).toMatchObject({ termsAccepted: { version: VERSION } });

  const legacy = await legacyPasswordClient(server);
  const stranger = await createUser(server);
  await expect(oidc.genericGrantRequest(legacy, 'password', { username: stranger.email, password: PASSWORD, scope: 'openid' })).rejects.toMatchObject({
    error: 'invalid_grant',
    error_description: 'this account has not accepted the terms of service: sign in through the browser to accept them',
  });
  const tokens = await oidc.genericGrantRequest(legacy, 'password', { username: email, password: PASSWORD, scope: 'openid' });
  expect(tokens.access_token).toEqual(expect.any(String));
});
