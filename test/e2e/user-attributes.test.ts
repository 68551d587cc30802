/**
 * A user's own attributes (Keycloak's user attributes) as apps and APIs see them: set through the admin API, those
 * USER_CLAIMS names come as claims in the ID token and at userinfo with the `profile` scope, and in access tokens
 * (a JWT for an API, introspection of an opaque one) whatever the scope, as `roles` do; attributes it does not
 * name stay on the server. Bad names, values and too many attributes are refused with a reason.
 */
import * as oidc from 'openid-client';
import { type AdminApi, adminApiOf } from '../support/admin-api.js';
import { API, PASSWORD, createUser, createWebClient, discover, loginFormOf, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type Page, UserAgent, textOf } from '../support/user-agent.js';

let server: TestServer;
let rp: oidc.Configuration;
let adminApi: AdminApi;

beforeAll(async () => {
  server = await startTestServer({ env: { USER_CLAIMS: 'tenant_id, departments' } });
  await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read'] });
  const web = await createWebClient(server, { firstParty: true });
  rp = await discover(server, web.clientId, web.secret);
  adminApi = await adminApiOf(server);
});
afterAll(() => server.close());

const patchUser = (userId: string, body: unknown) => adminApi.call('PATCH', `/users/${userId}`, body);

const payloadOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;

test('the attributes USER_CLAIMS names are claims: ID token and userinfo with profile, access tokens always; the others stay', async () => {
  const user = await createUser(server);
  const set = await patchUser(user.userId, { attributes: { tenant_id: 'acme', departments: ['sales', 'support'], internal_note: 'not for apps' } });
  expect(set).toMatchObject({ status: 200, body: { attributes: { tenant_id: 'acme', departments: ['sales', 'support'], internal_note: 'not for apps' } } });

  const { tokens } = await signInAndRedeem(rp, user, { scope: 'openid profile' });
  expect(tokens.claims()).toMatchObject({ sub: user.userId, tenant_id: 'acme', departments: ['sales', 'support'] });
  expect(tokens.claims()).not.toHaveProperty('internal_note');
  expect(await oidc.fetchUserInfo(rp, tokens.access_token, user.userId)).toMatchObject({ tenant_id: 'acme', departments: ['sales', 'support'] });
  const introspected = await oidc.tokenIntrospection(rp, tokens.access_token);
  expect(introspected).toMatchObject({ active: true, tenant_id: 'acme' });
  expect(introspected).not.toHaveProperty('internal_note');

  // Without `profile` the ID token does not carry them; an API's access token does, for authorising offline.
  const { tokens: forApi } = await signInAndRedeem(rp, user, { scope: 'openid messages:read', resource: API });
  expect(forApi.claims()).not.toHaveProperty('tenant_id');
  expect(payloadOf(forApi.access_token)).toMatchObject({ sub: user.userId, aud: API, tenant_id: 'acme', departments: ['sales', 'support'] });

  // null removes one; the rest stay; the next token says so.
  expect((await patchUser(user.userId, { attributes: { departments: null } })).body.attributes).toEqual({ tenant_id: 'acme', internal_note: 'not for apps' });
  const { tokens: after } = await signInAndRedeem(rp, user, { scope: 'openid profile' });
  expect(after.claims()).toMatchObject({ tenant_id: 'acme' });
  expect(after.claims()).not.toHaveProperty('departments');
});

test('the account page shows the person what apps are told: the released attributes, not the others', async () => {
  const user = await createUser(server);
  await patchUser(user.userId, { attributes: { tenant_id: 'acme <&>', departments: ['sales', 'support'], internal_note: 'not for apps' } });
  const agent = new UserAgent();
  const { page: login } = await agent.follow(`${server.issuer}/account`, server.issuer);
  const { page } = await agent.submit(login as Page, loginFormOf(login as Page), { email: user.email, password: PASSWORD }, server.issuer);
  expect(page?.status).toBe(200);
  expect(textOf(page)).toContain('What apps are told about you');
  expect(page?.html).toContain('<dt>tenant_id</dt>\n      <dd>acme &lt;&amp;&gt;</dd>');
  expect(page?.html).toContain('<dd>sales, support</dd>');
  expect(page?.html).not.toContain('internal_note');
  expect(page?.html).not.toContain('not for apps');
});

test('bad names, values and too many attributes are refused with a reason, and nothing changes', async () => {
  const user = await createUser(server);
  const cases: [unknown, RegExp][] = [
    [{ '1st': 'x' }, /an attribute name is a letter/],
    [{ 'has space': 'x' }, /an attribute name is a letter/],
    [{ long: 'x'.repeat(1025) }, /1024 characters at most/],
    [{ nested: { a: 1 } }, /attributes/],
    [Object.fromEntries(Array.from({ length: 51 }, (_, index) => [`a${index}`, 'x'])), /50 attributes at most/],
  ];
  for (const [attributes, reason] of cases) {
    const refused = await patchUser(user.userId, { attributes });
    expect({ status: refused.status, error: refused.body.error }).toEqual({ status: 400, error: 'invalid_request' });
    expect(refused.body.error_description).toMatch(reason);
  }
  expect((await server.services.users.findById(user.userId))?.attributes).toEqual({});
});
