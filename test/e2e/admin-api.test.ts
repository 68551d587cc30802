/**
 * The admin REST API over HTTP on the real server: admin tokens from client credentials (checked offline),
 * clients, users, grants, APIs, the audit log and the OpenAPI document. Every answer to a documented operation
 * is checked against the schema the document gives for it, and the last tests see that each operation with a
 * JSON body was.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { newChallenge } from '../../src/accounts/passkeys.js';
import { codeAt, newTotpSecret } from '../../src/accounts/totp.js';
import { adminApiIndicator } from '../../src/admin/index.js';
import type { FailureLimiter } from '../../src/security/failure-limiter.js';
import { DocumentedResponses } from '../support/documented-responses.js';
import { type Fixtures, createUser, createWebClient, discover, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { SoftwarePasskey } from '../support/software-passkey.js';

const ORDERS_API = 'https://orders.example.test';

let server: TestServer;
let adminToken: string;
let admin: string;
let documented: DocumentedResponses;

async function tokenFor(clientId: string, secret: string, resource: string): Promise<string> {
  const config = await discover(server, clientId, secret);
  return (await oidc.clientCredentialsGrant(config, { resource })).access_token;
}

async function serviceToken(scope: string, resource = adminApiIndicator(server.issuer)): Promise<string> {
  const { client, secret } = await server.services.clients.create({ type: 'service', name: `ops ${scope}`, scope });
  return tokenFor(client.clientId, secret as string, resource);
}

interface Call {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked with toMatchObject
  body: any;
}

async function call(method: string, path: string, options: { body?: unknown; raw?: string; token?: string | null } = {}): Promise<Call> {
  const token = options.token === undefined ? adminToken : options.token;
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined || options.raw !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${admin}${path}`, {
    method,
    headers,
    body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : undefined;
  documented.check(method, path, response.status, body);
  return { status: response.status, headers: response.headers, body };
}

/** A webhook endpoint that takes everything, so that the webhook operations have a queue to report on. */
let hooks: Server;

beforeAll(async () => {
  hooks = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
  const hooksUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hooks`;
  server = await startTestServer({ env: { WEBHOOK_URL: hooksUrl, WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 1).toString('base64')}`, WEBHOOK_EVENTS: 'client_*' } });
  admin = `${server.url}/admin/v1`;
  documented = await DocumentedResponses.fetch(`${admin}/openapi.json`);
  adminToken = await serviceToken('admin');
});
afterAll(async () => {
  await server.close();
  hooks.closeAllConnections();
  await new Promise((resolve) => hooks.close(resolve));
});

describe('admin API: authentication', () => {
  test('the admin API is registered as a resource server on start, idempotently', async () => {
    const { body } = await call('GET', '/apis');
    const mine = body.apis.filter((api: { indicator: string }) => api.indicator === adminApiIndicator(server.issuer));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ scopes: ['admin', 'admin:read'], accessTokenFormat: 'jwt' });
  });

  test('no token: 401 with a Bearer challenge', async () => {
    const response = await call('GET', '/clients', { token: null });
    expect(response.status).toBe(401);
    // No credentials: a bare challenge without an error code (RFC 6750 §3.1); the body says what is missing.
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="admin"');
    expect(response.body).toMatchObject({ error: 'invalid_token', error_description: expect.stringMatching(/required/) });
  });

  test('a garbage or tampered token: 401', async () => {
    expect((await call('GET', '/clients', { token: 'not.a.jwt' })).status).toBe(401);
    const [header, payload] = adminToken.split('.');
    const tampered = `${header}.${payload}.${Buffer.from('forged').toString('base64url')}`;
    const response = await call('GET', '/clients', { token: tampered });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  test('a token for another API: 401', async () => {
    await server.services.apis.create({ indicator: 'https://other.example.test', name: 'Other', scopes: ['admin', 'other'] });
    const token = await serviceToken('admin', 'https://other.example.test');
    expect((await call('GET', '/clients', { token })).status).toBe(401);
  });

  test('a client not registered with the admin scope: 403 insufficient_scope, whatever its token says', async () => {
    const token = await serviceToken('other');
    const response = await call('POST', '/users', { token, body: { email: 'nobody@example.test' } });
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toMatch(/error="insufficient_scope".*scope="admin"/);
    expect(response.body).toMatchObject({ error: 'insufficient_scope' });
  });

  test('admin:read reads but cannot change', async () => {
    const token = await serviceToken('admin:read');
    expect((await call('GET', '/clients', { token })).status).toBe(200);
    const response = await call('POST', '/apis', { token, body: { indicator: 'https://ro.example.test', name: 'RO' } });
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toContain('scope="admin"');
  });

  test('a disabled admin client’s token stops working', async () => {
    const { client, secret } = await server.services.clients.create({ type: 'service', name: 'ops temp', scope: 'admin' });
    const token = await tokenFor(client.clientId, secret as string, adminApiIndicator(server.issuer));
    expect((await call('GET', '/apis', { token })).status).toBe(200);
    expect((await call('POST', `/clients/${client.clientId}/disable`)).status).toBe(200);
    expect((await call('GET', '/apis', { token })).status).toBe(401);
  });

  test('the OpenAPI document is public and lists the paths with schemas', async () => {
    const response = await call('GET', '/openapi.json', { token: null });
    expect(response.status).toBe(200);
    expect(response.body.openapi).toBe('3.1.0');
    expect(Object.keys(response.body.paths)).toEqual(
      expect.arrayContaining(['/clients', '/clients/{clientId}', '/clients/{clientId}/secret', '/users', '/users/{userId}/grants', '/apis', '/audit']),
    );
    expect(response.body.paths['/clients'].post.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/NewClient');
    expect(response.body.components.schemas.NewClient.required).toEqual(['type', 'name']);
    expect(response.body.paths['/apis/{indicator}'].patch.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/ApiChanges');
    expect(response.body.paths['/audit'].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['type', 'user', 'client', 'since', 'until', 'limit', 'before']),
    );
    const rotate = response.body.paths['/clients/{clientId}/secret'].post;
    expect(rotate.requestBody.required).toBe(false);
    expect(Object.keys(rotate.responses)).toEqual(expect.arrayContaining(['413', '415', '503']));
  });

  test('unknown paths under /admin/v1 are JSON 404s (after authentication)', async () => {
    expect((await call('GET', '/nothing', { token: null })).status).toBe(401);
    const response = await call('GET', '/nothing');
    expect(response.status).toBe(404);
    expect(response.body).toMatchObject({ error: 'not_found' });
  });
});

describe('admin API: clients', () => {
  beforeAll(async () => {
    const response = await call('POST', '/apis', { body: { indicator: ORDERS_API, name: 'Orders', scopes: ['orders:read'] } });
    expect(response.status).toBe(201);
  });

  test('create shows the secret once; read never does', async () => {
    const created = await call('POST', '/clients', { body: { type: 'service', name: 'Billing job', scope: 'orders:read' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ type: 'service', name: 'Billing job', grantTypes: ['client_credentials'] });
    expect(typeof created.body.clientSecret).toBe('string');
    await expect(tokenFor(created.body.clientId, created.body.clientSecret, ORDERS_API)).resolves.toBeTruthy();

    const read = await call('GET', `/clients/${created.body.clientId}`);
    expect(read.status).toBe(200);
    expect(read.body.clientSecret).toBeUndefined();
    expect(JSON.stringify(read.body)).not.toContain(created.body.clientSecret);
    expect(read.body.secrets).toEqual([{ expiresAt: null }]);
    const list = await call('GET', '/clients');
    expect(list.body.clients.map((c: { clientId: string }) => c.clientId)).toContain(created.body.clientId);
  });

  test('rotating keeps the old secret until the time given, then only the new one works', async () => {
    const created = await call('POST', '/clients', { body: { type: 'service', name: 'Rotating job' } });
    const { clientId, clientSecret: oldSecret } = created.body;
    const rotated = await call('POST', `/clients/${clientId}/secret`, { body: { keepOldForSeconds: 2 } });
    expect(rotated.status).toBe(200);
    const newSecret = rotated.body.clientSecret;
    expect(newSecret).not.toBe(oldSecret);
    await expect(tokenFor(clientId, oldSecret, ORDERS_API)).resolves.toBeTruthy();
    await expect(tokenFor(clientId, newSecret, ORDERS_API)).resolves.toBeTruthy();
    await new Promise((resolve) => setTimeout(resolve, Date.parse(rotated.body.oldSecretsExpireAt) - Date.now() + 300));
    await expect(tokenFor(clientId, oldSecret, ORDERS_API)).rejects.toMatchObject({ error: 'invalid_client' });
    await expect(tokenFor(clientId, newSecret, ORDERS_API)).resolves.toBeTruthy();
  });

  test('keepOldUntil sets when the old secret lapses', async () => {
    const { body } = await call('POST', '/clients', { body: { type: 'service', name: 'Until job' } });
    const until = new Date(Date.now() + 3_600_000);
    const rotated = await call('POST', `/clients/${body.clientId}/secret`, { body: { keepOldUntil: until.toISOString() } });
    expect(rotated.status).toBe(200);
    expect(Math.abs(Date.parse(rotated.body.oldSecretsExpireAt) - until.getTime())).toBeLessThan(1500);
    const read = await call('GET', `/clients/${body.clientId}`);
    expect(read.body.secrets).toHaveLength(2);
    expect((await call('POST', `/clients/${body.clientId}/secret`, { body: { keepOldUntil: 'tomorrow' } })).status).toBe(400);
    expect((await call('POST', `/clients/${body.clientId}/secret`, { body: { keepOldUntil: '2001-01-01T00:00:00Z' } })).status).toBe(400);
  });

  test('update, disable, enable, delete', async () => {
    const { body } = await call('POST', '/clients', {
      body: { type: 'web', name: 'Shop', redirectUris: ['https://shop.example.test/cb'] },
    });
    const patched = await call('PATCH', `/clients/${body.clientId}`, { body: { name: 'Shop 2', redirectUris: ['https://shop.example.test/callback'] } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: 'Shop 2', redirectUris: ['https://shop.example.test/callback'] });
    const badUri = await call('PATCH', `/clients/${body.clientId}`, { body: { redirectUris: [] } });
    expect(badUri.status).toBe(400);
    expect(badUri.body.error_description).toMatch(/redirect URI/);
    expect((await call('PATCH', `/clients/${body.clientId}`, { body: { type: 'spa' } })).status).toBe(400);
    expect((await call('POST', `/clients/${body.clientId}/disable`)).body.disabledAt).not.toBeNull();
    expect((await call('POST', `/clients/${body.clientId}/enable`)).body.disabledAt).toBeNull();
    expect((await call('DELETE', `/clients/${body.clientId}`)).status).toBe(204);
    expect((await call('GET', `/clients/${body.clientId}`)).status).toBe(404);
  });

  test('a change applies from the next request on, with more clients in use than oidc-provider caches (100)', async () => {
    const fleet = await Promise.all(
      Array.from({ length: 110 }, (_, index) => call('POST', '/clients', { body: { type: 'service', name: `Fleet ${index}`, scope: 'orders:read' } })),
    );
    for (const { body } of fleet) await expect(tokenFor(body.clientId, body.clientSecret, ORDERS_API)).resolves.toBeTruthy();
    const { clientId, clientSecret } = fleet[0]!.body;
    const scopeOf = async () => JSON.parse(Buffer.from((await tokenFor(clientId, clientSecret, ORDERS_API)).split('.')[1]!, 'base64url').toString()).scope;
    expect(await scopeOf()).toBe('orders:read');
    expect((await call('PATCH', `/clients/${clientId}`, { body: { scope: '' } })).status).toBe(200);
    expect(await scopeOf()).toBeUndefined();
    await call('POST', `/clients/${clientId}/disable`);
    await expect(tokenFor(clientId, clientSecret, ORDERS_API)).rejects.toMatchObject({ error: 'invalid_client' });
    await call('POST', `/clients/${clientId}/enable`);
    await expect(tokenFor(clientId, clientSecret, ORDERS_API)).resolves.toBeTruthy();

    const { body: web } = await call('POST', '/clients', { body: { type: 'web', name: 'Moving shop', redirectUris: ['https://shop.example.test/old'] } });
    const authorize = (redirectUri: string) =>
      fetch(`${server.url}/auth?${new URLSearchParams({ client_id: web.clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid' })}`, {
        redirect: 'manual',
      });
    expect((await authorize('https://shop.example.test/old')).status).toBe(303);
    await call('PATCH', `/clients/${web.clientId}`, { body: { redirectUris: ['https://shop.example.test/new'] } });
    expect((await authorize('https://shop.example.test/old')).status).toBe(400);
    expect((await authorize('https://shop.example.test/new')).status).toBe(303);
  });

  test('a disabled client’s tokens introspect as inactive; a deleted one’s grants and refresh tokens are gone', async () => {
    const ledger = 'https://ledger.example.test';
    expect((await call('POST', '/apis', { body: { indicator: ledger, name: 'Ledger', scopes: ['ledger'], accessTokenFormat: 'opaque' } })).status).toBe(201);
    const { body: job } = await call('POST', '/clients', { body: { type: 'service', name: 'Ledger job', scope: 'ledger' } });
    const jobToken = await tokenFor(job.clientId, job.clientSecret, ledger);
    const { body: resourceServer } = await call('POST', '/clients', { body: { type: 'service', name: 'Ledger API' } });
    const apiConfig = await discover(server, resourceServer.clientId, resourceServer.clientSecret);
    const active = async (token: string) => (await oidc.tokenIntrospection(apiConfig, token)).active;
    expect(await active(jobToken)).toBe(true);
    await call('POST', `/clients/${job.clientId}/disable`);
    expect(await active(jobToken)).toBe(false);
    await call('POST', `/clients/${job.clientId}/enable`);
    expect(await active(jobToken)).toBe(true);

    const user = await createUser(server);
    const web = await createWebClient(server, { firstParty: true });
    const { tokens } = await signInAndRedeem(await discover(server, web.clientId, web.secret), user, { scope: 'openid offline_access', prompt: 'consent' });
    const refreshToken = tokens.refresh_token as string;
    expect([await active(tokens.access_token), await active(refreshToken)]).toEqual([true, true]);
    const stored = () => server.services.db('oidc_models').whereRaw(`payload->>'clientId' = ?`, [web.clientId]).pluck('model');
    expect((await stored()).sort()).toEqual(['Grant', 'RefreshToken']);
    const userinfo = () => fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect((await userinfo()).status).toBe(200);
    // Another client introspecting a user's token of a disabled client once got a 500 from oidc-provider.
    await call('POST', `/clients/${web.clientId}/disable`);
    expect([await active(tokens.access_token), await active(refreshToken)]).toEqual([false, false]);
    expect((await userinfo()).status).toBe(401);
    await call('POST', `/clients/${web.clientId}/enable`);

    for (const clientId of [job.clientId, web.clientId]) expect((await call('DELETE', `/clients/${clientId}`)).status).toBe(204);
    expect([await active(jobToken), await active(tokens.access_token), await active(refreshToken)]).toEqual([false, false, false]);
    expect(await stored()).toEqual([]);
  });

  test('bad bodies are 400 with the reason, unknown ids 404, duplicates 409', async () => {
    const missing = await call('POST', '/clients', { body: { type: 'robot' } });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ error: 'invalid_request' });
    expect(missing.body.error_description).toMatch(/type must be web, spa, service or device/);
    expect(missing.body.error_description).toMatch(/name/);
    const notJson = await call('POST', '/clients', { raw: '{"type":' });
    expect(notJson.status).toBe(400);
    expect(notJson.body).toMatchObject({ error: 'invalid_request' });
    const unknown = await call('GET', '/clients/no-such-client');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: 'not_found' });
    expect((await call('POST', '/clients/no-such-client/secret', { body: {} })).status).toBe(404);
    expect((await call('DELETE', '/clients/no-such-client')).status).toBe(404);
    const first = await call('POST', '/clients', { body: { type: 'service', name: 'Dup', clientId: 'dup-client' } });
    expect(first.status).toBe(201);
    const second = await call('POST', '/clients', { body: { type: 'service', name: 'Dup', clientId: 'dup-client' } });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ error: 'conflict' });
  });

  test('a scope is stored tidied (split on any whitespace, each token once), on create as on update', async () => {
    const created = await call('POST', '/clients', { body: { type: 'service', name: 'Tidy', scope: ' admin\tadmin:read\nadmin ' } });
    expect(created.status).toBe(201);
    expect(created.body.scope).toBe('admin admin:read');
    const token = await tokenFor(created.body.clientId, created.body.clientSecret, adminApiIndicator(server.issuer));
    expect((await call('GET', '/clients', { token })).status).toBe(200);
    const patched = await call('PATCH', `/clients/${created.body.clientId}`, { body: { scope: 'admin:read\t\tadmin:read' } });
    expect(patched.body.scope).toBe('admin:read');
  });

  test('unknown fields on create are refused by name, nothing stored', async () => {
    const client = await call('POST', '/clients', { body: { type: 'service', name: 'Typo', scopes: 'admin' } });
    expect(client.status).toBe(400);
    expect(client.body.error_description).toMatch(/scopes/);
    expect((await call('GET', '/clients')).body.clients.some((c: { name: string }) => c.name === 'Typo')).toBe(false);
    const user = await call('POST', '/users', { body: { email: 'typo@example.test', roels: ['admin'] } });
    expect(user.status).toBe(400);
    expect(user.body.error_description).toMatch(/roels/);
    expect((await call('GET', '/users?email=typo@example.test')).body.users).toEqual([]);
    const api = await call('POST', '/apis', { body: { indicator: 'https://typo.example.test', name: 'Typo', scope: ['a'] } });
    expect(api.status).toBe(400);
    expect(api.body.error_description).toMatch(/scope/);
  });

  test('a body that is not JSON is a 415, one over the limit a 413, JSON that is no object a 400; nothing changes', async () => {
    const { body: client } = await call('POST', '/clients', { body: { type: 'service', name: 'Form' } });
    const form = await fetch(`${admin}/clients/${client.clientId}/secret`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'keepOldForSeconds=0',
    });
    expect(form.status).toBe(415);
    expect(await form.json()).toMatchObject({ error: 'unsupported_media_type', error_description: expect.stringMatching(/must be JSON/) });
    const tooLarge = await call('POST', '/clients', { raw: JSON.stringify({ type: 'service', name: 'x'.repeat(70_000) }) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.error_description).toMatch(/over 64kb/);
    for (const raw of ['[1]', '[]']) {
      const notObject = await call('POST', '/clients', { raw });
      expect(notObject.status).toBe(400);
      expect(notObject.body.error_description).toBe('the body must be a JSON object');
    }
    await server.services.audit.flush();
    const rotations = await call('GET', `/audit?client=${client.clientId}&type=client_secret_rotated`);
    expect(rotations.body.events).toEqual([]);
  });

  test('a NUL character anywhere (body field, list item, query, path id) is a 400 naming it, nothing stored', async () => {
    const user = await call('POST', '/users', { body: { email: 'nul@example.test', name: 'Nul\u0000Name' } });
    expect(user.status).toBe(400);
    expect(user.body).toMatchObject({ error: 'invalid_request', error_description: 'name: must not contain a NUL character' });
    expect((await call('GET', '/users?email=nul@example.test')).body.users).toEqual([]);
    const client = await call('POST', '/clients', { body: { type: 'service', name: 'Nul\u0000Client' } });
    expect(client.body.error_description).toBe('name: must not contain a NUL character');
    const redirect = await call('POST', '/clients', { body: { type: 'web', name: 'Nul', redirectUris: ['https://nul.example.test/\u0000cb'] } });
    expect(redirect.status).toBe(400);
    expect(redirect.body.error_description).toBe('redirectUris.0: must not contain a NUL character');
    expect((await call('GET', '/clients')).body.clients.some((c: { name: string }) => c.name.startsWith('Nul'))).toBe(false);
    for (const path of ['/users?q=a%00b', '/clients/abc%00def', `/apis/${encodeURIComponent('https://nul.example.test/\u0000')}`]) {
      const response = await call('GET', path);
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/NUL character/) });
    }
  });

  test('input that merely says "already exists" is a 400, not a conflict', async () => {
    const response = await call('POST', '/clients', {
      body: { type: 'web', name: 'Wording', redirectUris: ['http://already-exists.example.test/already exists'] },
    });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_request' });
  });
});

describe('admin API: users, sessions and grants', () => {
  let userId: string;

  test('create, read, update and search', async () => {
    const created = await call('POST', '/users', { body: { email: 'Ada@Example.test', name: 'Ada Lovelace', password: 'analytical engine 1843' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: 'ada@example.test', name: 'Ada Lovelace', roles: [] });
    expect(JSON.stringify(created.body)).not.toMatch(/password_hash|\$2[aby]\$/);
    userId = created.body.id;
    expect((await call('POST', '/users', { body: { email: 'ada@example.test' } })).status).toBe(409);
    expect((await call('GET', `/users/${userId}`)).body.email).toBe('ada@example.test');

    const patched = await call('PATCH', `/users/${userId}`, { body: { roles: ['editor'], emailVerified: true } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ roles: ['editor'], emailVerified: true, name: 'Ada Lovelace' });
    expect((await call('PATCH', `/users/${userId}`, { body: { roles: ['not a role!'] } })).status).toBe(400);
    expect((await call('PATCH', `/users/${userId}`, { body: { password: 'x' } })).status).toBe(400);

    const byQuery = await call('GET', '/users?q=lovelace');
    expect(byQuery.body.users.map((u: { id: string }) => u.id)).toEqual([userId]);
    const byEmail = await call('GET', '/users?email=ADA@example.test');
    expect(byEmail.body.users).toHaveLength(1);
    expect((await call('GET', '/users?q=nobody-by-that-name')).body.users).toEqual([]);
    expect((await call('GET', '/users?limit=0')).status).toBe(400);
  });

  test('users page with a cursor', async () => {
    for (let i = 0; i < 3; i += 1) await call('POST', '/users', { body: { email: `pager${i}@example.test` } });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Call = await call('GET', `/users?q=pager&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.users.map((u: { email: string }) => u.email));
      cursor = page.body.next;
    } while (cursor);
    expect(seen.sort()).toEqual(['pager0@example.test', 'pager1@example.test', 'pager2@example.test']);
  });

  test('set password: weak ones are refused, a good one works', async () => {
    const weak = await call('POST', `/users/${userId}/password`, { body: { password: 'short' } });
    expect(weak.status).toBe(400);
    expect((await call('POST', `/users/${userId}/password`, { body: { password: 'a much better passphrase' } })).status).toBe(200);
    await expect(server.services.users.verifyPassword('ada@example.test', 'a much better passphrase')).resolves.toBeDefined();
    expect((await call('POST', '/users/00000000-0000-4000-8000-000000000000/password', { body: { password: 'a much better passphrase' } })).status).toBe(404);
  });

  test('remove password: the user has none until "Forgot your password?" or an administrator sets one', async () => {
    const removed = await call('DELETE', `/users/${userId}/password`);
    expect(removed).toMatchObject({ status: 200, body: { id: userId, passwordChangedAt: null, termsAccepted: null } });
    await expect(server.services.users.verifyPassword('ada@example.test', 'a much better passphrase')).resolves.toBeUndefined();
    expect((await call('POST', `/users/${userId}/password`, { body: { password: 'a much better passphrase' } })).status).toBe(200);
    expect((await call('DELETE', '/users/00000000-0000-4000-8000-000000000000/password')).status).toBe(404);
  });

  test('disable and enable', async () => {
    expect((await call('POST', `/users/${userId}/disable`)).body.disabledAt).not.toBeNull();
    expect((await call('POST', `/users/${userId}/enable`)).body.disabledAt).toBeNull();
    expect((await call('POST', '/users/not-an-id/disable')).status).toBe(404);
  });

  test('an address changed by an administrator is unconfirmed unless said otherwise; one another user has is a 409', async () => {
    const { body: created } = await call('POST', '/users', { body: { email: 'before@example.test', emailVerified: true } });
    const moved = await call('PATCH', `/users/${created.id}`, { body: { email: 'After@Example.test' } });
    expect(moved.body).toMatchObject({ email: 'after@example.test', emailVerified: false });
    const confirmed = await call('PATCH', `/users/${created.id}`, { body: { email: 'again@example.test', emailVerified: true } });
    expect(confirmed.body).toMatchObject({ email: 'again@example.test', emailVerified: true });
    // The same address again changes nothing, and keeps it confirmed.
    expect((await call('PATCH', `/users/${created.id}`, { body: { email: 'again@example.test' } })).body.emailVerified).toBe(true);
    const taken = await call('PATCH', `/users/${created.id}`, { body: { email: 'ada@example.test' } });
    expect(taken).toMatchObject({ status: 409, body: { error: 'conflict', error_description: 'a user with the email ada@example.test already exists' } });
    expect((await call('PATCH', `/users/${created.id}`, { body: { email: 'not an address' } })).status).toBe(400);
    await server.services.audit.flush();
    const [event] = await server.services.db('audit_events').where({ type: 'user_updated', account_id: created.id }).orderBy('id').limit(1);
    expect(event.detail).toMatchObject({ from: 'before@example.test', to: 'after@example.test', by: 'admin-api' });
  });

  test('links by mail: a password reset and an address confirmation are sent at once, refused when they cannot apply, audited as by admin-api', async () => {
    const { body: created } = await call('POST', '/users', { body: { email: 'mailed@example.test' } });
    const reset = await call('POST', `/users/${created.id}/password-reset-mail`);
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ sentTo: 'mailed@example.test', expiresAt: expect.any(String) });
    expect(Date.parse(reset.body.expiresAt) - Date.now()).toBeGreaterThan(29 * 60_000);
    const confirmation = await call('POST', `/users/${created.id}/email-confirmation-mail`);
    expect(confirmation.status).toBe(200);
    expect(await server.services.db('email_links').where({ user_id: created.id }).pluck('purpose')).toEqual(expect.arrayContaining(['password_reset', 'email_confirmation']));

    await call('PATCH', `/users/${created.id}`, { body: { emailVerified: true } });
    const confirmedAlready = await call('POST', `/users/${created.id}/email-confirmation-mail`);
    expect(confirmedAlready).toMatchObject({ status: 409, body: { error: 'conflict', error_description: 'the address mailed@example.test is confirmed already' } });
    await call('POST', `/users/${created.id}/disable`);
    const disabled = await call('POST', `/users/${created.id}/password-reset-mail`);
    expect(disabled).toMatchObject({ status: 409, body: { error_description: 'mailed@example.test is disabled: enable the user first' } });
    expect((await call('POST', '/users/00000000-0000-4000-8000-000000000000/password-reset-mail')).status).toBe(404);

    await server.services.audit.flush();
    const requested = await server.services.db('audit_events').where({ type: 'email_link_requested', account_id: created.id }).orderBy('id');
    expect(requested.map((event) => event.detail)).toEqual([
      expect.objectContaining({ purpose: 'password_reset', by: 'admin-api', adminClientId: expect.any(String) }),
      expect.objectContaining({ purpose: 'email_confirmation', by: 'admin-api' }),
    ]);
  });

  test('two-step verification: totpRequired set and cleared with PATCH, an enrollment reset with DELETE /users/{id}/totp, audited as by admin-api', async () => {
    const { body: document } = await call('GET', '/openapi.json', { token: null });
    expect(document.components.schemas.UserChanges.properties.totpRequired).toMatchObject({ type: 'boolean', description: expect.stringMatching(/next sign-in/) });
    expect(document.paths['/users/{userId}/totp'].delete.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/User');

    const { body: created } = await call('POST', '/users', { body: { email: 'grace@example.test' } });
    expect(created).toMatchObject({ totpRequired: false, totpEnrolledAt: null });
    const required = await call('PATCH', `/users/${created.id}`, { body: { totpRequired: true } });
    expect(required.status).toBe(200);
    expect(required.body).toMatchObject({ totpRequired: true, totpEnrolledAt: null });
    expect((await call('PATCH', `/users/${created.id}`, { body: { totpRequired: 'yes' } })).status).toBe(400);

    // The user sets up an app, as the set-up page does after its first code.
    const secret = newTotpSecret();
    const recoveryCodes = await server.services.twoFactor.enroll(created.id, secret, codeAt(secret, Date.now()));
    if (!Array.isArray(recoveryCodes)) throw new Error(`not enrolled: ${recoveryCodes}`);
    expect((await call('GET', `/users/${created.id}`)).body.totpEnrolledAt).toEqual(expect.any(String));

    const reset = await call('DELETE', `/users/${created.id}/totp`);
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ id: created.id, totpRequired: true, totpEnrolledAt: null });
    const { twoFactor, users } = server.services;
    expect(await twoFactor.verify(created.id, codeAt(secret, Date.now() + 30_000))).toBeUndefined();
    expect(await twoFactor.verify(created.id, recoveryCodes[0] as string)).toBeUndefined();
    expect(twoFactor.stepFor(await users.require(created.id))).toBe('enroll');
    // A second reset has nothing to remove, and says so in the audit log only.
    expect((await call('DELETE', `/users/${created.id}/totp`)).body).toMatchObject({ totpEnrolledAt: null });
    const cleared = await call('PATCH', `/users/${created.id}`, { body: { totpRequired: false } });
    expect(cleared.body).toMatchObject({ totpRequired: false, totpEnrolledAt: null });
    expect(twoFactor.stepFor(await users.require(created.id))).toBe('none');

    expect((await call('DELETE', '/users/00000000-0000-4000-8000-000000000000/totp')).status).toBe(404);
    expect((await call('DELETE', '/users/not-an-id/totp')).body).toMatchObject({ error: 'not_found' });
    expect((await call('DELETE', `/users/${created.id}/totp`, { token: await serviceToken('admin:read') })).status).toBe(403);

    await server.services.audit.flush();
    const adminClientId = decodeJwt(adminToken).client_id;
    const resets = (await call('GET', '/audit?type=user_totp_reset&user=grace@example.test')).body.events;
    expect(resets.map((event: { detail: object }) => event.detail)).toEqual([
      { by: 'admin-api', adminClientId, wasEnrolled: false },
      { by: 'admin-api', adminClientId, wasEnrolled: true },
    ]);
    const updates = (await call('GET', '/audit?type=user_updated&user=grace@example.test')).body.events;
    expect(updates.map((event: { detail: { fields: string[] } }) => event.detail.fields)).toEqual([['totpRequired'], ['totpRequired']]);
  });

  describe('with a signed-in user', () => {
    let user: Fixtures;
    let rp: oidc.Configuration;
    let rpClientId: string;
    beforeAll(async () => {
      user = await createUser(server);
      const web = await createWebClient(server, { firstParty: true });
      rpClientId = web.clientId;
      rp = await discover(server, web.clientId, web.secret);
    });

    test('lists the user’s sessions (one per browser) and ends one, which signs that browser out', async () => {
      const laptop = await signInAndRedeem(rp, user);
      const phone = await signInAndRedeem(rp, user);
      const listed = await call('GET', `/users/${user.userId}/sessions`);
      expect(listed.status).toBe(200);
      expect(listed.body.sessions.length).toBeGreaterThanOrEqual(2);
      for (const session of listed.body.sessions) expect(session).toMatchObject({ uid: expect.any(String), clients: [rpClientId] });
      // Session ids are not the cookie values.
      expect(JSON.stringify(listed.body)).not.toContain(laptop.agent.cookies.get('_session') as string);

      const before = new Set<string>(listed.body.sessions.map((session: { uid: string }) => session.uid));
      expect((await call('DELETE', `/users/${user.userId}/sessions/${listed.body.sessions[0].uid}`)).status).toBe(204);
      expect((await call('DELETE', `/users/${user.userId}/sessions/${listed.body.sessions[0].uid}`)).status).toBe(404);
      const after = (await call('GET', `/users/${user.userId}/sessions`)).body.sessions as { uid: string }[];
      expect(after).toHaveLength(before.size - 1);
      // Exactly one of the two browsers now has to sign in again.
      const again = await Promise.all([signInAndRedeem(rp, user, { agent: laptop.agent }), signInAndRedeem(rp, user, { agent: phone.agent })]);
      expect(again.filter((flow) => flow.sawLoginPage)).toHaveLength(1);
    });

    test('lists the user’s grants (no token values) and revokes one, ending its refresh token', async () => {
      const { tokens } = await signInAndRedeem(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
      const refreshToken = tokens.refresh_token as string;
      const listed = await call('GET', `/users/${user.userId}/grants`);
      expect(listed.status).toBe(200);
      const grant = listed.body.grants.find((g: { clientId: string; scopes: string[] }) => g.clientId === rpClientId && g.scopes.includes('offline_access'));
      expect(grant).toMatchObject({ clientId: rpClientId, scopes: expect.arrayContaining(['openid', 'offline_access']) });
      expect(JSON.stringify(listed.body)).not.toContain(refreshToken);
      expect(JSON.stringify(listed.body)).not.toContain(tokens.access_token);

      // The id listed is the grant's own id: the refresh token issued under it is found by it.
      expect(await server.services.db('oidc_models').where({ grant_id: grant.grantId })).not.toHaveLength(0);
      const revoked = await call('DELETE', `/users/${user.userId}/grants/${encodeURIComponent(grant.grantId)}`);
      expect(revoked.status).toBe(204);
      // Everything issued under the grant is gone, not just the grant.
      expect(await server.services.db('oidc_models').where({ grant_id: grant.grantId })).toHaveLength(0);
      expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
      await expect(oidc.refreshTokenGrant(rp, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect((await call('DELETE', `/users/${user.userId}/grants/${encodeURIComponent(grant.grantId)}`)).status).toBe(404);
    });

    test('revoke-sessions ends the user’s sessions and refresh tokens', async () => {
      const { tokens } = await signInAndRedeem(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
      const refreshToken = tokens.refresh_token as string;
      expect((await call('GET', `/users/${user.userId}/sessions`)).body.sessions.length).toBeGreaterThan(0);
      const response = await call('POST', `/users/${user.userId}/revoke-sessions`);
      expect(response.status).toBe(200);
      expect(response.body.sessionsRevokedAt).not.toBeNull();
      await expect(oidc.refreshTokenGrant(rp, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect((await call('GET', `/users/${user.userId}/grants`)).body.grants).toEqual([]);
      expect((await call('GET', `/users/${user.userId}/sessions`)).body.sessions).toEqual([]);
    });
  });

  test('the user a client knows by sub: a public client’s sub is the user’s id; an unknown one is 404', async () => {
    const user = await createUser(server);
    const { clientId } = await createWebClient(server);
    expect(await call('GET', `/clients/${clientId}/subjects/${user.userId}`)).toMatchObject({ status: 200, body: { id: user.userId, email: user.email } });
    expect(await call('GET', `/clients/${clientId}/subjects/00000000-0000-4000-8000-000000000000`)).toMatchObject({ status: 404, body: { error: 'not_found' } });
  });

  test('a user’s linked identities are listed, and one unlinked is audited and 404 the second time', async () => {
    const user = await createUser(server);
    expect(await server.services.linkedIdentities.link(user.userId, 'google', '1234567890', 'ada@gmail.example')).toBe(true);
    const listed = await call('GET', `/users/${user.userId}/identities`);
    expect(listed.body).toEqual({
      identities: [{ provider: 'google', subject: '1234567890', email: 'ada@gmail.example', createdAt: expect.any(String), lastUsedAt: expect.any(String) }],
    });
    expect((await call('DELETE', `/users/${user.userId}/identities/google`)).status).toBe(204);
    expect((await call('GET', `/users/${user.userId}/identities`)).body).toEqual({ identities: [] });
    expect(await call('DELETE', `/users/${user.userId}/identities/google`)).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect((await call('GET', '/users/00000000-0000-4000-8000-000000000000/identities')).status).toBe(404);
    await server.services.audit.flush();
    const events = await call('GET', `/audit?type=identity_unlinked&accountId=${user.userId}`);
    expect(events.body.events).toEqual([expect.objectContaining({ detail: { by: 'admin-api', provider: 'google', email: 'ada@gmail.example' } })]);
  });

  test('a user’s passkeys are listed without their keys, and one removed is audited and 404 the second time', async () => {
    const user = await createUser(server);
    const passkey = new SoftwarePasskey(user.userId, new URL(server.issuer).origin, { aaguid: 'fa2b99dc-9e39-4257-8f92-4a30d23c4118' });
    const challenge = newChallenge();
    const credential = JSON.stringify(passkey.attestation({ challenge }));
    const added = await server.services.passkeys.register({ id: user.userId }, { credential, challenge, name: 'YubiKey' });
    expect(added).toMatchObject({ id: passkey.id });

    const listed = await call('GET', `/users/${user.userId}/passkeys`);
    expect(listed.body).toEqual({
      passkeys: [
        {
          id: passkey.id,
          name: 'YubiKey',
          synced: false,
          authenticator: 'YubiKey 5 Series with NFC',
          aaguid: 'fa2b99dc-9e39-4257-8f92-4a30d23c4118',
          transports: ['internal'],
          createdAt: expect.any(String),
          lastUsedAt: null,
        },
      ],
    });
    const path = `/users/${user.userId}/passkeys/${encodeURIComponent(passkey.id)}`;
    expect((await call('DELETE', path)).status).toBe(204);
    expect((await call('GET', `/users/${user.userId}/passkeys`)).body).toEqual({ passkeys: [] });
    expect(await call('DELETE', path)).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect((await call('GET', '/users/00000000-0000-4000-8000-000000000000/passkeys')).status).toBe(404);
    await server.services.audit.flush();
    const events = await call('GET', `/audit?type=passkey_removed&accountId=${user.userId}`);
    expect(events.body.events).toEqual([expect.objectContaining({ detail: { by: 'admin-api', passkey: 'YubiKey' } })]);
  });
});

describe('admin API: initial access tokens (dynamic client registration)', () => {
  test('made (the token shown once), listed without the token, revoked once; a bad body is a 400', async () => {
    const made = await call('POST', '/client-registration-tokens', { body: { uses: 3, expiresInSeconds: 600 } });
    expect(made).toMatchObject({ status: 201, body: { usesLeft: 3, createdBy: 'admin-api' } });
    expect(made.body.initialAccessToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(made.body.expiresAt) - Date.now()).toBeLessThanOrEqual(600_000);
    const listed = await call('GET', '/client-registration-tokens');
    expect(listed.body.tokens).toEqual([expect.objectContaining({ id: made.body.id, usesLeft: 3 })]);
    expect(JSON.stringify(listed.body)).not.toContain(made.body.initialAccessToken);
    for (const refused of [{ uses: 0 }, { expiresInSeconds: 10 }, { uses: 1, token: 'mine' }]) {
      expect((await call('POST', '/client-registration-tokens', { body: refused })).status).toBe(400);
    }
    expect((await call('DELETE', `/client-registration-tokens/${made.body.id}`)).status).toBe(204);
    expect((await call('DELETE', `/client-registration-tokens/${made.body.id}`)).status).toBe(404);
    expect((await call('GET', '/client-registration-tokens')).body.tokens).toEqual([]);
    await server.services.audit.flush();
    const { body: audit } = await call('GET', '/audit?type=client_registration_token_created');
    expect(audit.events[0]?.detail).toMatchObject({ by: 'admin-api', id: made.body.id, uses: 3 });
  });
});

describe('admin API: groups', () => {
  test('create, show, change, list members, put a user in one, delete; refusals are 4xx with the reason', async () => {
    const name = 'team/ops east';
    const path = `/groups/${encodeURIComponent(name)}`;
    expect(await call('POST', '/groups', { body: { name, roles: ['ops'], description: 'Operations' } })).toMatchObject({ status: 201, body: { name, roles: ['ops'] } });
    expect((await call('POST', '/groups', { body: { name } })).status).toBe(409);
    expect((await call('POST', '/groups', { body: { name: 'bad//name' } })).status).toBe(400);
    expect((await call('POST', '/groups', { body: { name: 'x', roles: ['no spaces allowed'] } })).status).toBe(400);
    expect(await call('GET', path)).toMatchObject({ status: 200, body: { name, description: 'Operations' } });
    expect(await call('PATCH', path, { body: { roles: ['ops', 'pager'], description: null } })).toMatchObject({ status: 200, body: { roles: ['ops', 'pager'], description: null } });
    expect((await call('PATCH', '/groups/nobody', { body: { roles: [] } })).status).toBe(404);
    expect((await call('GET', '/groups')).body.groups.map((group: { name: string }) => group.name)).toContain(name);

    const created = await call('POST', '/users', { body: { email: 'grouped@example.test', roles: ['reader'], groups: [name] } });
    expect(created).toMatchObject({ status: 201, body: { roles: ['reader'], groups: [name], effectiveRoles: ['reader', 'ops', 'pager'] } });
    expect((await call('POST', '/users', { body: { email: 'ungrouped@example.test', groups: ['no such group'] } })).status).toBe(400);
    expect(await call('GET', `${path}/members`)).toMatchObject({ status: 200, body: { members: [{ id: created.body.id, email: 'grouped@example.test' }], next: null } });
    expect((await call('GET', '/groups/nobody/members')).status).toBe(404);

    expect((await call('DELETE', path)).status).toBe(204);
    expect((await call('DELETE', path)).status).toBe(404);
    expect((await call('GET', `/users/${created.body.id}`)).body).toMatchObject({ groups: [], effectiveRoles: ['reader'] });
  });
});

describe('admin API: APIs and the audit log', () => {
  test('register, list, refuse a duplicate, delete by encoded indicator', async () => {
    const created = await call('POST', '/apis', { body: { indicator: 'https://inventory.example.test/v1', name: 'Inventory', scopes: ['stock:read'] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ indicator: 'https://inventory.example.test/v1', accessTokenFormat: 'jwt' });
    expect((await call('POST', '/apis', { body: { indicator: 'https://inventory.example.test/v1', name: 'Again' } })).status).toBe(409);
    expect((await call('POST', '/apis', { body: { indicator: 'not a uri', name: 'Bad' } })).status).toBe(400);
    expect((await call('GET', '/apis')).body.apis.map((api: { indicator: string }) => api.indicator)).toContain('https://inventory.example.test/v1');
    expect((await call('DELETE', `/apis/${encodeURIComponent('https://inventory.example.test/v1')}`)).status).toBe(204);
    expect((await call('DELETE', `/apis/${encodeURIComponent('https://inventory.example.test/v1')}`)).status).toBe(404);
    const removeAdmin = await call('DELETE', `/apis/${encodeURIComponent(adminApiIndicator(server.issuer))}`);
    expect(removeAdmin.status).toBe(400);
    expect(removeAdmin.body.error_description).toBe('the admin API itself cannot be removed');
  });

  test('concurrent writes of one indicator or of two defaults: one wins, the other is a 409 or runs after it, never a 500', async () => {
    const body = { indicator: 'https://race.example.test', name: 'Race' };
    const created = await Promise.all(Array.from({ length: 4 }, () => call('POST', '/apis', { body })));
    expect(created.map((response) => response.status).sort()).toEqual([201, 409, 409, 409]);
    expect(created.find((response) => response.status === 409)?.body).toMatchObject({ error: 'conflict' });

    const defaults = await Promise.all(
      ['https://default-a.example.test', 'https://default-b.example.test'].map((indicator) =>
        call('POST', '/apis', { body: { indicator, name: 'Default', isDefault: true } }),
      ),
    );
    expect(defaults.map((response) => response.status)).toEqual([201, 201]);
    const switched = await Promise.all(
      ['https://default-a.example.test', 'https://default-b.example.test'].map((indicator) =>
        call('PATCH', `/apis/${encodeURIComponent(indicator)}`, { body: { isDefault: true } }),
      ),
    );
    expect(switched.map((response) => response.status)).toEqual([200, 200]);
    const apis = (await call('GET', '/apis')).body.apis as { isDefault: boolean }[];
    expect(apis.filter((api) => api.isDefault)).toHaveLength(1);
  });

  test('update: the next token follows the new lifetime and scopes; bad bodies 400, unknown 404, the admin API itself 400', async () => {
    const indicator = 'https://warehouse.example.test';
    const path = `/apis/${encodeURIComponent(indicator)}`;
    expect((await call('POST', '/apis', { body: { indicator, name: 'Warehouse', scopes: ['bins:read'], accessTokenTtl: 300 } })).status).toBe(201);
    const { client, secret } = await server.services.clients.create({ type: 'service', name: 'picker', scope: 'bins:read bins:write' });
    const claims = async () => decodeJwt(await tokenFor(client.clientId, secret as string, indicator));
    const before = await claims();
    expect(before.exp! - before.iat!).toBe(300);
    expect(before.scope).toBe('bins:read');

    const patched = await call('PATCH', path, { body: { name: 'Warehouse 2', scopes: ['bins:read', 'bins:write'], accessTokenTtl: 900 } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ indicator, name: 'Warehouse 2', scopes: ['bins:read', 'bins:write'], accessTokenTtl: 900, accessTokenFormat: 'jwt' });
    const after = await claims();
    expect(after.exp! - after.iat!).toBe(900);
    expect(after.scope).toBe('bins:read bins:write');

    expect((await call('PATCH', path, { body: { accessTokenTtl: 10 } })).status).toBe(400);
    expect((await call('PATCH', path, { body: { indicator: 'https://elsewhere.example.test' } })).status).toBe(400);
    expect((await call('PATCH', path, { body: { scopes: ['openid'] } })).status).toBe(400);
    expect((await call('PATCH', `/apis/${encodeURIComponent('https://nowhere.example.test')}`, { body: { name: 'x' } })).status).toBe(404);
    expect((await call('PATCH', `/apis/${encodeURIComponent(adminApiIndicator(server.issuer))}`, { body: { accessTokenTtl: 3600 } })).status).toBe(400);
    expect((await call('GET', '/apis')).body.apis.find((api: { indicator: string }) => api.indicator === indicator)).toMatchObject({ accessTokenTtl: 900 });

    await server.services.audit.flush();
    const updates = await call('GET', '/audit?type=api_updated&limit=1000');
    expect(updates.body.events.map((e: { detail: unknown }) => e.detail)).toContainEqual({
      by: 'admin-api',
      indicator,
      fields: ['name', 'scopes', 'accessTokenTtl'],
      adminClientId: decodeJwt(adminToken).client_id,
    });
    await call('DELETE', path);
  });

  test('changes made through the API are audited as by admin-api, queryable and paged', async () => {
    const { body: client } = await call('POST', '/clients', { body: { type: 'service', name: 'Audited' } });
    await call('POST', `/clients/${client.clientId}/secret`, { body: { keepOldForSeconds: 0 } });
    await call('POST', `/clients/${client.clientId}/disable`);
    await server.services.audit.flush();

    const byClient = await call('GET', `/audit?client=${client.clientId}`);
    expect(byClient.status).toBe(200);
    expect(byClient.body.events.map((e: { type: string }) => e.type)).toEqual(['client_disabled', 'client_secret_rotated', 'client_created']);
    const adminClientId = decodeJwt(adminToken).client_id;
    for (const event of byClient.body.events) {
      // Who acted (the admin client, from its token) and from where, as other audited requests record it.
      expect(event.detail).toMatchObject({ by: 'admin-api', adminClientId });
      expect(event).toMatchObject({ ip: expect.any(String), userAgent: expect.any(String), requestId: expect.any(String) });
    }
    expect(JSON.stringify(byClient.body)).not.toContain(client.clientSecret);

    const firstPage = await call('GET', `/audit?client=${client.clientId}&limit=2`);
    expect(firstPage.body.events).toHaveLength(2);
    expect(firstPage.body.next).toBeTruthy();
    const secondPage = await call('GET', `/audit?client=${client.clientId}&limit=2&before=${firstPage.body.next}`);
    expect(secondPage.body.events.map((e: { type: string }) => e.type)).toEqual(['client_created']);

    const users = await call('GET', `/audit?type=user_created&user=ada@example.test`);
    expect(users.body.events).toHaveLength(1);
    expect(users.body.events[0].detail).toMatchObject({ by: 'admin-api' });
    const apis = await call('GET', '/audit?type=api_created&limit=1000');
    expect(apis.body.events.some((e: { detail: { by: string; indicator: string } }) => e.detail.by === 'admin-api' && e.detail.indicator === ORDERS_API)).toBe(true);

    const future = await call('GET', `/audit?client=${client.clientId}&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(future.body).toEqual({ events: [], next: null });
    expect((await call('GET', '/audit?since=yesterday')).status).toBe(400);
    expect((await call('GET', '/audit?before=abc')).status).toBe(400);
    expect((await call('GET', '/clients', { token: null })).status).toBe(401);
    expect((await call('DELETE', `/clients/${client.clientId}`, { token: await serviceToken('admin:read') })).status).toBe(403);
    await server.services.audit.flush();
    const refused = (await call('GET', '/audit?type=admin_refused&limit=2')).body.events;
    expect(refused).toEqual([
      expect.objectContaining({ outcome: 'failure', requestId: expect.any(String), detail: expect.objectContaining({ status: 403, method: 'DELETE', reason: expect.stringMatching(/admin scope/) }) }),
      expect.objectContaining({ outcome: 'failure', detail: expect.objectContaining({ status: 401, path: '/admin/v1/clients', reason: expect.stringMatching(/required/) }) }),
    ]);
    const overflow = await call('GET', '/audit?before=99999999999999999999');
    expect(overflow.status).toBe(400);
    expect(overflow.body.error_description).toMatch(/before must be the `next` value/);
    expect((await call('GET', '/audit?before=9223372036854775807')).status).toBe(200);
  });
});

describe('admin API: webhooks', () => {
  test('the delivery state, a retry at once, and skipping the held event (none here: the endpoint takes all)', async () => {
    // The endpoint is set at the server's first webhook run, a second after start.
    for (const started = Date.now(); (await call('GET', '/webhook')).status === 404 && Date.now() - started < 10_000; ) await new Promise((resolve) => setTimeout(resolve, 100));
    const created = await call('POST', '/clients', { body: { type: 'service', name: 'Webhook watcher' } });
    expect(created.status).toBe(201);
    for (const started = Date.now(); (await call('GET', '/webhook')).body.pending > 0 && Date.now() - started < 10_000; ) await new Promise((resolve) => setTimeout(resolve, 100));
    const state = await call('GET', '/webhook');
    expect(state).toMatchObject({ status: 200, body: { url: expect.stringMatching(/\/hooks$/), lastEventId: expect.any(String), pending: 0, failures: 0, retryAt: null, lastError: null } });
    expect(await call('POST', '/webhook/retry')).toMatchObject({ status: 200, body: { failures: 0 } });
    expect(await call('POST', '/webhook/skip')).toMatchObject({ status: 200, body: { skipped: null } });
  });
});

describe('admin API: answers match the OpenAPI document', () => {
  /** Records failures until the limiter locks `key`, however many it takes under this server's limits. */
  async function lockOut(limiter: FailureLimiter, key: string): Promise<void> {
    for (let failures = 0; failures < 100; failures += 1) if ((await limiter.fail(key)) > 0) return;
    throw new Error(`${key} was not locked after 100 failures`);
  }

  test('the locks of a client, a user and an address: shown and lifted with their end, null when there is none', async () => {
    const { body: client } = await call('POST', '/clients', { body: { type: 'service', name: 'Locked job' } });
    const { body: user } = await call('POST', '/users', { body: { email: 'locked@example.test' } });
    const address = '203.0.113.9';
    const { limits } = server.services;
    await lockOut(limits.clientAuthByClient, client.clientId);
    await lockOut(limits.loginByAccount, user.email);
    await lockOut(limits.loginByIp, address);

    for (const lock of [`/clients/${client.clientId}/lock`, `/users/${user.id}/lock`]) {
      expect((await call('GET', lock)).body).toEqual({ lockedUntil: expect.any(String) });
      expect((await call('DELETE', lock)).body).toEqual({ wasLockedUntil: expect.any(String) });
      expect((await call('GET', lock)).body).toEqual({ lockedUntil: null });
      expect((await call('DELETE', lock)).body).toEqual({ wasLockedUntil: null });
    }
    const locks = `/ips/${address}/locks`;
    expect((await call('GET', locks)).body).toEqual({ signIn: expect.any(String), clientAuthentication: null });
    expect((await call('DELETE', locks)).body).toEqual({ wasLockedUntil: { signIn: expect.any(String), clientAuthentication: null } });
    expect((await call('GET', locks)).body).toEqual({ signIn: null, clientAuthentication: null });
  });

  test('a property renamed, missing or not documented (a secret hash) fails the check', async () => {
    const { body: created } = await call('POST', '/clients', { body: { type: 'service', name: 'Drifting job' } });
    const path = `/clients/${created.clientId}`;
    const { body: shown } = await call('GET', path);
    const { clientId, ...withoutId } = shown;
    const renamed = { ...withoutId, id: clientId };
    expect(() => documented.check('GET', path, 200, renamed)).toThrow(/must have required property 'clientId'/);
    expect(() => documented.check('GET', path, 200, renamed)).toThrow(/must NOT have additional properties \{"additionalProperty":"id"\}/);
    const withHash = { ...shown, secrets: [{ expiresAt: null, hash: 'a1b2' }] };
    expect(() => documented.check('GET', path, 200, withHash)).toThrow(/\/secrets\/0 must NOT have additional properties/);
    expect(() => documented.check('GET', path, 200, { ...shown, createdAt: 'yesterday' })).toThrow(/\/createdAt must match pattern/);
  });

  test('each success body is documented as a component that admits no property it does not name', async () => {
    const { body: document } = await call('GET', '/openapi.json', { token: null });
    type Responses = Record<string, { content?: Record<string, { schema: { $ref: string } }> }>;
    const paths = document.paths as Record<string, Record<string, { responses: Responses }>>;
    const successes = Object.values(paths).flatMap((methods) =>
      Object.values(methods).flatMap(({ responses }) => Object.entries(responses).filter(([status]) => status.startsWith('2'))),
    );
    const schemas = successes.flatMap(([, response]) => response.content?.['application/json']?.schema ?? []);
    expect(schemas.length).toBeGreaterThan(0);
    for (const { $ref } of schemas) {
      expect($ref).toMatch(/^#\/components\/schemas\//);
      expect(document.components.schemas[$ref.split('/').at(-1) as string]).toMatchObject({ type: 'object', additionalProperties: false });
    }
  });

  // Last: the tests above have made their calls by now.
  test('every documented operation with a JSON body was called and its answer checked', () => {
    expect(documented.unchecked()).toEqual([]);
  });
});
