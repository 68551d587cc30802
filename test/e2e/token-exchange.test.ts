/**
 * Token exchange (RFC 8693): an API's back end, called with a user's access token, exchanges it for a token to
 * another API for the same user (openid-client's genericGrantRequest as the back end, the tokens checked as the
 * other API would: offline against our JWKS, or by introspection).
 */
import { generateKeyPair, SignJWT, createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { adminApiIndicator } from '../../src/admin/index.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { adminApiOf } from '../support/admin-api.js';
import { cleanEnvironment, runToEnd, waitFor } from '../support/process.js';
import { type Fixtures, createSpaClient, createUser, discover, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const ORDERS = 'https://orders.example.test';
const LEGACY_ORDERS = 'https://legacy-orders.example.test';
const STOCK = 'https://stock.example.test';
const STOCK_OPAQUE = 'https://stock-ledger.example.test';
const BILLING = 'https://billing.example.test';

let server: TestServer;
let spa: oidc.Configuration;
let backend: oidc.Configuration;
let backendId: string;
let user: Fixtures;

beforeAll(async () => {
  server = await startTestServer();
  const { apis, clients } = server.services;
  await apis.create({ indicator: ORDERS, name: 'Orders', scopes: ['orders:read', 'orders:write'] });
  await apis.create({ indicator: LEGACY_ORDERS, name: 'Legacy orders', scopes: ['orders:read'], accessTokenFormat: 'opaque' });
  await apis.create({ indicator: STOCK, name: 'Stock', scopes: ['stock:read', 'stock:write'] });
  await apis.create({ indicator: STOCK_OPAQUE, name: 'Stock ledger', scopes: ['ledger:read'], accessTokenFormat: 'opaque' });
  await apis.create({ indicator: BILLING, name: 'Billing', scopes: ['billing:read'] });
  const created = await clients.create({
    type: 'service',
    name: 'Orders back end',
    scope: 'stock:read ledger:read orders:read orders:write',
    tokenExchangeFrom: [ORDERS, LEGACY_ORDERS],
  });
  backendId = created.client.clientId;
  backend = await discover(server, backendId, created.secret);
  spa = await discover(server, (await createSpaClient(server)).clientId, undefined, oidc.None());
  user = await createUser(server, ['buyer']);
});
afterAll(() => server.close());

/** The user's access token for `resource`, from a sign-in in the SPA. */
async function userToken(resource: string, scope: string, who = user) {
  const { tokens } = await signInAndRedeem(spa, who, { scope: `openid ${scope}`, resource });
  return tokens.access_token;
}

const exchange = (client: oidc.Configuration, parameters: Record<string, string>) =>
  oidc.genericGrantRequest(client, GRANT, { subject_token_type: ACCESS_TOKEN, ...parameters });

async function verifiedAs(token: string, audience: string) {
  const jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
  return (await jwtVerify(token, jwks, { issuer: server.issuer, audience, typ: 'at+jwt' })).payload;
}

const audited = async () => {
  await server.services.audit.flush();
  return queryAuditEvents(server.services.db, { type: 'token_exchange', limit: 1000 });
};

test('the back end of an API exchanges its caller’s token for one to another API, for the same user and sign-in', async () => {
  const subject = await userToken(ORDERS, 'orders:read');
  const exchanged = await exchange(backend, { subject_token: subject, resource: STOCK });
  expect(exchanged).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'bearer', scope: 'stock:read' });
  expect(exchanged.refresh_token).toBeUndefined();
  expect(exchanged.id_token).toBeUndefined();

  const claims = await verifiedAs(exchanged.access_token, STOCK);
  const original = decodeJwt(subject);
  expect(claims).toMatchObject({ sub: user.userId, client_id: backendId, scope: 'stock:read', roles: ['buyer'], amr: ['pwd'], auth_time: original.auth_time });
  // Delegation (RFC 8693 §4.1): the back end acts for the user.
  expect(claims.act).toEqual({ sub: backendId });
  expect(claims.exp).toBeLessThanOrEqual(original.exp as number);

  // audience= is the same request by another name; an opaque API gets an opaque token its back end introspects.
  const byAudience = await exchange(backend, { subject_token: subject, audience: STOCK_OPAQUE });
  expect(byAudience.access_token.split('.')).toHaveLength(1);
  expect(await oidc.tokenIntrospection(backend, byAudience.access_token)).toMatchObject({
    active: true,
    sub: user.userId,
    client_id: backendId,
    aud: STOCK_OPAQUE,
    scope: 'ledger:read',
    amr: ['pwd'],
    act: { sub: backendId },
  });

  const [event] = await audited();
  expect(event).toMatchObject({ outcome: 'success', accountId: user.userId, clientId: backendId, detail: { audience: STOCK_OPAQUE, subjectAudience: [ORDERS] } });

  const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { grant_types_supported: string[] };
  expect(discovery.grant_types_supported).toContain(GRANT);
});

test('a chain of back ends: each exchange nests the actor before it in act, up to five deep', async () => {
  const { clients } = server.services;
  const created = await clients.create({ type: 'service', name: 'Stock back end', scope: 'billing:read stock:read', tokenExchangeFrom: [STOCK, STOCK_OPAQUE] });
  const stockBackend = await discover(server, created.client.clientId, created.secret);
  const subject = await userToken(ORDERS, 'orders:read');
  // Orders' back end calls Stock (opaque), whose back end calls Billing: Billing sees both, the latest outermost.
  const toStock = await exchange(backend, { subject_token: subject, resource: STOCK_OPAQUE });
  const toBilling = await exchange(stockBackend, { subject_token: toStock.access_token, resource: BILLING });
  expect((await verifiedAs(toBilling.access_token, BILLING)).act).toEqual({ sub: created.client.clientId, act: { sub: backendId } });
  const events = (await audited()).filter((event) => event.clientId === created.client.clientId);
  expect(events[0]?.detail).toMatchObject({ act: { sub: created.client.clientId, act: { sub: backendId } } });

  // Back ends calling each other in a loop stop at five actors.
  let token = (await exchange(backend, { subject_token: subject, resource: STOCK })).access_token;
  for (let depth = 2; depth <= 5; depth += 1) {
    const next = await exchange(stockBackend, { subject_token: token, resource: STOCK });
    token = next.access_token;
  }
  expect(JSON.stringify(decodeJwt(token).act).match(/"sub"/g)).toHaveLength(5);
  await expect(exchange(stockBackend, { subject_token: token, resource: STOCK })).rejects.toMatchObject({
    error: 'invalid_request',
    error_description: 'subject_token: it was exchanged 5 times already: back ends calling each other this deep are a loop',
  });
  // Gone again: a later test watches discovery stop listing the grant once no client has it.
  await clients.remove(created.client.clientId);
});

test('an exchange never widens a token: on the subject’s own API it keeps to the subject’s scopes', async () => {
  const subject = await userToken(ORDERS, 'orders:read');
  const narrowed = await exchange(backend, { subject_token: subject, resource: ORDERS });
  expect(narrowed.scope).toBe('orders:read');
  await expect(exchange(backend, { subject_token: subject, resource: ORDERS, scope: 'orders:write' })).rejects.toMatchObject({
    error: 'invalid_scope',
    error_description: expect.stringMatching(/may have orders:read$/),
  });
  // Elsewhere: what the back end is registered for on that API, and nothing it is not.
  await expect(exchange(backend, { subject_token: subject, resource: STOCK, scope: 'stock:write' })).rejects.toMatchObject({ error: 'invalid_scope' });
  const some = await exchange(backend, { subject_token: subject, resource: STOCK, scope: 'stock:read stock:write' });
  expect(some.scope).toBe('stock:read');
});

test('an opaque subject token works while its grant and user do; signing the user out everywhere ends it and what it was exchanged for', async () => {
  const other = await createUser(server);
  const subject = await userToken(LEGACY_ORDERS, 'orders:read', other);
  const exchanged = await exchange(backend, { subject_token: subject, resource: STOCK_OPAQUE });
  expect(await oidc.tokenIntrospection(backend, exchanged.access_token)).toMatchObject({ active: true, sub: other.userId });

  await new Promise((resolve) => setTimeout(resolve, 1100)); // sign-outs end what was issued in earlier seconds
  await server.services.users.revokeSessions(other.userId);
  await expect(exchange(backend, { subject_token: subject, resource: STOCK_OPAQUE })).rejects.toMatchObject({
    error: 'invalid_request',
    error_description: expect.stringMatching(/^subject_token: /),
  });
  expect(await oidc.tokenIntrospection(backend, exchanged.access_token)).toMatchObject({ active: false });
});

test('refusals, each with its OAuth error and reason', async () => {
  const subject = await userToken(ORDERS, 'orders:read');
  const refused = (client: oidc.Configuration, parameters: Record<string, string>, error: string, description: RegExp) =>
    expect(exchange(client, parameters)).rejects.toMatchObject({ error, error_description: expect.stringMatching(description) });

  // A client not registered as any API's back end.
  const { client: plain, secret } = await server.services.clients.create({ type: 'service', name: 'Someone else', scope: 'stock:read' });
  await refused(await discover(server, plain.clientId, secret), { subject_token: subject, resource: STOCK }, 'unauthorized_client', /grant type/);

  // Tokens it may not exchange: for an API it is not the back end of, forged, its own, not a token at all.
  const billing = await userToken(BILLING, 'billing:read');
  await refused(backend, { subject_token: billing, resource: STOCK }, 'invalid_request', /not for an API this client is the back end of/);
  const { privateKey } = await generateKeyPair('RS256');
  const forged = await new SignJWT({ ...decodeJwt(subject) }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'x' }).sign(privateKey);
  await refused(backend, { subject_token: forged, resource: STOCK }, 'invalid_request', /not an unexpired access token issued here/);
  await refused(backend, { subject_token: 'not-a-token', resource: STOCK }, 'invalid_request', /not an unexpired access token issued here/);
  const own = (await oidc.clientCredentialsGrant(backend, { resource: ORDERS })).access_token;
  await refused(backend, { subject_token: own, resource: STOCK }, 'invalid_request', /names no user/);

  // What the request asks for that is not offered.
  await refused(backend, { subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', resource: STOCK }, 'invalid_request', /subject_token_type must be/);
  await refused(backend, { subject_token: subject, resource: STOCK, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, 'invalid_request', /only .*access_token is issued/);
  await refused(backend, { subject_token: subject, resource: STOCK, actor_token: subject, actor_token_type: ACCESS_TOKEN }, 'invalid_request', /actor_token is not taken/);
  await refused(backend, { resource: STOCK }, 'invalid_request', /subject_token is required/);
  await refused(backend, { subject_token: subject }, 'invalid_target', /name the API/);
  await refused(backend, { subject_token: subject, resource: 'https://nowhere.example.test' }, 'invalid_target', /no API .* is registered as/);
  await refused(backend, { subject_token: subject, resource: adminApiIndicator(server.issuer) }, 'invalid_target', /no API .* is registered as/);
  await refused(backend, { subject_token: subject, resource: STOCK, audience: STOCK_OPAQUE }, 'invalid_target', /one API at a time/);

  // A disabled user's token.
  const leaving = await createUser(server);
  const theirs = await userToken(ORDERS, 'orders:read', leaving);
  await server.services.users.disable(leaving.userId);
  await refused(backend, { subject_token: theirs, resource: STOCK }, 'invalid_request', /disabled/);

  const reasons = (await audited()).filter((event) => event.outcome === 'failure').map((event) => event.detail?.reason);
  expect(reasons).toEqual(expect.arrayContaining(['subject_token_not_for_client', 'subject_token_invalid', 'subject_token_not_a_user', 'actor_token', 'many_targets', 'subject_token_revoked']));
});

test('registration: web and service clients only, naming registered APIs; the admin API turns it on and off, and discovery follows', async () => {
  const { clients } = server.services;
  await expect(clients.create({ type: 'spa', name: 'SPA', redirectUris: ['https://app.example.test/cb'], tokenExchangeFrom: [ORDERS] })).rejects.toThrow(/token exchange is for web and service clients/);
  await expect(clients.create({ type: 'service', name: 'Typo', tokenExchangeFrom: ['https://ordres.example.test'] })).rejects.toThrow(/no API is registered as https:\/\/ordres.example.test/);

  const admin = await adminApiOf(server);
  const created = await admin.call('POST', '/clients', { type: 'web', name: 'Portal', redirectUris: ['https://portal.example.test/cb'], tokenExchangeFrom: [BILLING] });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ tokenExchangeFrom: [BILLING], grantTypes: expect.arrayContaining([GRANT]) });
  const off = await admin.call('PATCH', `/clients/${created.body.clientId}`, { tokenExchangeFrom: [] });
  expect(off.body).toMatchObject({ tokenExchangeFrom: [] });
  expect(off.body.grantTypes).not.toContain(GRANT);
  expect((await admin.call('PATCH', `/clients/${created.body.clientId}`, { tokenExchangeFrom: ['ftp://x'] })).status).toBe(400);

  // With the back end disabled, no client may exchange: discovery no longer lists the grant (its answer is cached for seconds).
  expect((await admin.call('POST', `/clients/${backendId}/disable`)).status).toBe(200);
  try {
    const advertised = async () => ((await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { grant_types_supported: string[] }).grant_types_supported;
    await waitFor(async () => !(await advertised()).includes(GRANT), 'discovery to stop listing token exchange');
  } finally {
    await admin.call('POST', `/clients/${backendId}/enable`);
  }
});

test('the CLI registers a back end, changes its APIs and turns token exchange off', async () => {
  const env = cleanEnvironment(server.env);
  const authz = (args: string[]) => runToEnd('src/cli.ts', args, env);
  const spa = await authz(['clients', 'add', '--type', 'spa', '--name', 'SPA', '--redirect-uri', 'https://app.example.test/cb', '--token-exchange-from', ORDERS]);
  expect(spa).toMatchObject({ code: 1, stdout: '' });
  expect(spa.stderr).toMatch(/token exchange is for web and service clients/);

  const added = await authz(['clients', 'add', '--type', 'service', '--name', 'Billing back end', '--scope', 'stock:read', '--token-exchange-from', BILLING, '--json']);
  expect(added.code).toBe(0);
  const client = JSON.parse(added.stdout) as { client_id: string };
  expect(client).toMatchObject({ token_exchange_from: [BILLING], grant_types: ['client_credentials', GRANT] });

  const updated = await authz(['clients', 'update', client.client_id, '--token-exchange-from', ORDERS, '--token-exchange-from', BILLING, '--json']);
  expect(JSON.parse(updated.stdout)).toMatchObject({ token_exchange_from: [ORDERS, BILLING] });
  const typo = await authz(['clients', 'update', client.client_id, '--token-exchange-from', 'https://bililng.example.test']);
  expect(typo).toMatchObject({ code: 1, stderr: expect.stringMatching(/no API is registered as https:\/\/bililng\.example\.test/) });

  expect((await authz(['clients', 'update', client.client_id, '--no-token-exchange'])).code).toBe(0);
  const shown = JSON.parse((await authz(['clients', 'show', client.client_id])).stdout);
  expect(shown).toMatchObject({ token_exchange_from: [], grant_types: ['client_credentials'] });
});
