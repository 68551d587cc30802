/**
 * Groups (Keycloak's groups): a user holds their own roles and their groups', in ID tokens, userinfo and JWT
 * access tokens, and names their groups in a `groups` claim to the apps granted that scope. Managed through the
 * admin API and the CLI; a change made through one instance is in its next token at once, and in another
 * instance's within CLIENT_CACHE_TTL_MS. Two-step verification required of a role is required of the group's
 * members. Over HTTP with openid-client, on PostgreSQL and Redis.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { adminApiOf } from '../support/admin-api.js';
import { cleanEnvironment, runToEnd, waitFor } from '../support/process.js';
import { API, type Fixtures, authorize, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
let other: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { TOTP_REQUIRED_ROLES: 'admin', CLIENT_CACHE_TTL_MS: '300' } });
  other = await startTestServer({ instanceOf: server });
  await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read'], isDefault: true });
});
afterAll(async () => {
  await other?.close();
  await server?.close();
});

/** A sign-in of `user` to a first-party app on `instance`: the ID token's claims and the API's access token's. */
async function signIn(instance: TestServer, user: Fixtures, scope: string) {
  const { clientId, secret } = await createWebClient(instance, { firstParty: true });
  const app = await discover(instance, clientId, secret);
  const flow = await authorize(app, user, { scope: `${scope} messages:read`, resource: API });
  const tokens = await oidc.authorizationCodeGrant(app, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
  const { payload: accessToken } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${instance.url}/jwks`)), { issuer: server.issuer, audience: API });
  return { idToken: (tokens.claims() ?? {}) as Record<string, unknown>, accessToken };
}

/** What userinfo answers `user`'s app granted `scope` (a token for userinfo: no API named). */
async function userinfoOf(user: Fixtures, scope: string) {
  const { clientId, secret } = await createWebClient(server, { firstParty: true });
  const app = await discover(server, clientId, secret);
  const flow = await authorize(app, user, { scope });
  const tokens = await oidc.authorizationCodeGrant(app, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
  return oidc.fetchUserInfo(app, tokens.access_token, user.userId);
}

test('a member holds the group’s roles in every token, and names the group to apps granted the groups scope', async () => {
  const admin = await adminApiOf(server);
  expect(await admin.call('POST', '/groups', { name: 'staff/support', roles: ['support', 'reader'], description: 'First line' })).toMatchObject({
    status: 201,
    body: { name: 'staff/support', roles: ['support', 'reader'], description: 'First line' },
  });
  expect((await admin.call('POST', '/groups', { name: 'staff/support' })).status).toBe(409);
  const user = await createUser(server, ['editor']);
  const refused = await admin.call('PATCH', `/users/${user.userId}`, { groups: ['staff/support', 'staff/suport'] });
  expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: expect.stringContaining('groups: no group named staff/suport') } });
  const joined = await admin.call('PATCH', `/users/${user.userId}`, { groups: ['staff/support'] });
  expect(joined).toMatchObject({ status: 200, body: { roles: ['editor'], groups: ['staff/support'], effectiveRoles: ['editor', 'support', 'reader'] } });

  const withGroups = await signIn(server, user, 'openid roles groups');
  expect(withGroups.idToken).toMatchObject({ roles: ['editor', 'support', 'reader'], groups: ['staff/support'] });
  expect(await userinfoOf(user, 'openid roles groups')).toMatchObject({ roles: ['editor', 'support', 'reader'], groups: ['staff/support'] });
  expect((await userinfoOf(user, 'openid roles')).groups).toBeUndefined();
  expect(withGroups.accessToken).toMatchObject({ roles: ['editor', 'support', 'reader'], groups: ['staff/support'] });

  // Without the scope: the roles all the same (APIs authorise on them), the group names kept to the apps granted them.
  const withoutGroups = await signIn(server, user, 'openid roles');
  expect(withoutGroups.idToken.groups).toBeUndefined();
  expect(withoutGroups.accessToken).toMatchObject({ roles: ['editor', 'support', 'reader'] });
  expect(withoutGroups.accessToken.groups).toBeUndefined();

  const { body } = await admin.call('GET', `/groups/${encodeURIComponent('staff/support')}/members`);
  expect(body).toEqual({ members: [{ id: user.userId, email: user.email, name: expect.any(String) }], next: null });
});

test('a change to a group is in its members’ next tokens: at once on the instance that made it, within CLIENT_CACHE_TTL_MS on another', async () => {
  const admin = await adminApiOf(server);
  await admin.call('POST', '/groups', { name: 'billing', roles: ['invoices:read'] });
  const user = await createUser(server, []);
  await server.services.users.setGroups(user.userId, ['billing']);
  expect((await signIn(server, user, 'openid roles')).accessToken.roles).toEqual(['invoices:read']);
  // The other instance reads the new group within CLIENT_CACHE_TTL_MS (300 ms here).
  await waitFor(async () => ((await signIn(other, user, 'openid roles')).accessToken.roles as string[]).includes('invoices:read'), 'the other instance to read the new group', 5000);

  expect(await admin.call('PATCH', '/groups/billing', { roles: ['invoices:read', 'invoices:write'] })).toMatchObject({ status: 200, body: { roles: ['invoices:read', 'invoices:write'] } });
  expect((await signIn(server, user, 'openid roles')).accessToken.roles).toEqual(['invoices:read', 'invoices:write']);
  await waitFor(async () => ((await signIn(other, user, 'openid roles')).accessToken.roles as string[]).includes('invoices:write'), 'the other instance to read the group again', 5000);
});

test('two-step verification required of a role (TOTP_REQUIRED_ROLES) is required of the members of a group that gives it', async () => {
  await server.services.groups.create({ name: 'operators', roles: ['admin'] });
  const { userId } = await createUser(server, []);
  const before = await server.services.users.require(userId);
  expect(server.services.twoFactor.isRequired(before)).toBe(false);
  const member = await server.services.users.setGroups(userId, ['operators']);
  expect(server.services.twoFactor.requiringRoles(member)).toEqual(['admin']);
  expect(server.services.twoFactor.stepFor(member)).toBe('enroll');
});

test('a removed group is taken off its members, who keep their own roles; the audit log says so', async () => {
  const admin = await adminApiOf(server);
  await admin.call('POST', '/groups', { name: 'contractors', roles: ['vpn'] });
  const first = await createUser(server, ['reader']);
  const second = await createUser(server, []);
  for (const { userId } of [first, second]) await admin.call('PATCH', `/users/${userId}`, { groups: ['contractors'] });
  const page = await admin.call('GET', '/groups/contractors/members?limit=1');
  expect(page.body.members).toHaveLength(1);
  expect((await admin.call('GET', `/groups/contractors/members?limit=1&cursor=${page.body.next}`)).body.members).toHaveLength(1);
  expect((await admin.call('GET', '/groups/contractors/members?cursor=not-an-id')).status).toBe(400);

  expect((await admin.call('DELETE', '/groups/contractors')).status).toBe(204);
  expect((await admin.call('GET', '/groups/contractors')).status).toBe(404);
  expect((await admin.call('GET', `/users/${first.userId}`)).body).toMatchObject({ roles: ['reader'], groups: [], effectiveRoles: ['reader'] });
  expect((await signIn(server, first, 'openid roles groups')).accessToken).toMatchObject({ roles: ['reader'], groups: [] });
  await server.services.audit.flush();
  const [removed] = await queryAuditEvents(server.services.db, { type: 'group_removed', limit: 1 });
  expect(removed).toMatchObject({ outcome: 'success', detail: { group: 'contractors', members: 2, by: 'admin-api' } });
});

test('the CLI adds, lists, changes and removes groups, and puts users in them', async () => {
  const env = cleanEnvironment(server.env);
  const authz = (...args: string[]) => runToEnd('src/cli.ts', args, env);
  expect((await authz('groups', 'add', 'night shift', '--roles', 'oncall,pager', '--description', 'After hours')).stdout).toBe('created group night shift (roles: oncall, pager)\n');
  const user = await createUser(server, []);
  expect((await authz('users', 'set-groups', user.email, 'night shift')).stdout).toBe(`${user.email} is now in: night shift\n`);
  const listed = JSON.parse((await authz('users', 'list', '--json')).stdout) as { email: string; groups: string[] }[];
  expect(listed.find((each) => each.email === user.email)).toMatchObject({ groups: ['night shift'] });
  expect(JSON.parse((await authz('groups', 'members', 'night shift', '--json')).stdout)).toEqual([{ id: user.userId, email: user.email, name: expect.any(String) }]);
  expect(JSON.parse((await authz('groups', 'update', 'night shift', '--roles', 'oncall', '--json')).stdout)).toMatchObject({ roles: ['oncall'] });
  expect((await authz('groups', 'list')).stdout).toMatch(/night shift\s+oncall\s+After hours/);
  const bad = await authz('groups', 'add', '/leading-slash');
  expect({ code: bad.code, stderr: bad.stderr }).toEqual({ code: 1, stderr: 'authz: name: a group name is one or more parts separated by "/", each with no control characters and no space at either end\n' });
  expect((await authz('groups', 'remove', 'night shift')).stdout).toBe('removed group night shift (1 member taken off it)\n');
});
