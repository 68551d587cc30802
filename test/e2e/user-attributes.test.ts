/**
 * A user's own attributes (Keycloak's user attributes) as apps and APIs see them: set through the admin API, those
 * USER_CLAIMS names come as claims in the ID token and at userinfo with the `profile` scope, and in access tokens
 * (a JWT for an API, introspection of an opaque one) whatever the scope, as `roles` do; attributes it does not
 * name stay on the server. Bad names, values and too many attributes are refused with a reason.
 */
import * as oidc from 'openid-client';
import { type AdminApi, adminApiOf } from '../support/admin-api.js';
import { API, PASSWORD, REDIRECT_URI, authorize, codeFlowRequest, createUser, createWebClient, discover, loginFormOf, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type Page, UserAgent, formOf, textOf } from '../support/user-agent.js';

let server: TestServer;
let rp: oidc.Configuration;
let adminApi: AdminApi;

beforeAll(async () => {
  server = await startTestServer({ env: { USER_CLAIMS: 'tenant_id, departments, hr:employee_id' } });
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

test('an attribute with a scope of its own (hr:employee_id) goes only to an app registered for that scope and granted it', async () => {
  const user = await createUser(server);
  await patchUser(user.userId, { attributes: { tenant_id: 'acme', employee_id: 'E-1042' } });
  const discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as { scopes_supported: string[]; claims_supported: string[] };
  expect(discovery.scopes_supported).toContain('hr');
  expect(discovery.claims_supported).toContain('employee_id');

  // The HR app is registered with the scope; the person is asked, and the page says what it releases.
  const { client, secret } = await server.services.clients.create({ type: 'web', name: 'HR', redirectUris: [REDIRECT_URI], scope: 'openid profile hr offline_access' });
  const hr = await discover(server, client.clientId, secret as string);
  const request = await codeFlowRequest(hr, { scope: 'openid hr offline_access', prompt: 'consent' });
  const agent = new UserAgent();
  const { page: login, redirectedTo: early } = await agent.follow(request.url.href, server.issuer);
  if (!login) throw new Error(`no login page: ${early?.href}`);
  const { page: consent } = await agent.submit(login as Page, loginFormOf(login as Page), { email: user.email, password: PASSWORD }, server.issuer);
  expect(textOf(consent)).toContain('See your employee_id');
  const { redirectedTo } = await agent.submit(consent as Page, formOf(consent as Page, '/confirm'), {}, server.issuer);
  const tokens = await oidc.authorizationCodeGrant(hr, redirectedTo as URL, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
  expect(tokens.claims()).toMatchObject({ employee_id: 'E-1042' });
  // Not `profile`: the profile's attributes stay out of the ID token.
  expect(tokens.claims()).not.toHaveProperty('tenant_id');
  expect(await oidc.fetchUserInfo(hr, tokens.access_token, user.userId)).toMatchObject({ employee_id: 'E-1042' });
  expect(await oidc.tokenIntrospection(hr, tokens.access_token)).toMatchObject({ active: true, employee_id: 'E-1042', tenant_id: 'acme' });
  // A refreshed access token still carries it: the grant holds the scope.
  const refreshed = await oidc.refreshTokenGrant(hr, tokens.refresh_token as string);
  expect(await oidc.tokenIntrospection(hr, refreshed.access_token)).toMatchObject({ active: true, employee_id: 'E-1042' });

  // An app registered without the scope cannot ask for it, and its tokens carry no such attribute.
  const refused = await authorize(rp, user, { scope: 'openid profile hr' });
  expect(Object.fromEntries(refused.callbackUrl.searchParams)).toMatchObject({ error: 'invalid_scope' });
  const { tokens: plain } = await signInAndRedeem(rp, user, { scope: 'openid profile' });
  expect(plain.claims()).toMatchObject({ tenant_id: 'acme' });
  expect(plain.claims()).not.toHaveProperty('employee_id');
  expect(await oidc.tokenIntrospection(rp, plain.access_token)).not.toHaveProperty('employee_id');
  const { tokens: forApi } = await signInAndRedeem(rp, user, { scope: 'openid messages:read', resource: API });
  expect(payloadOf(forApi.access_token)).toMatchObject({ tenant_id: 'acme' });
  expect(payloadOf(forApi.access_token)).not.toHaveProperty('employee_id');
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
