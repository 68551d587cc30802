/**
 * A backend service (client credentials) gets an RFC 9068 JWT access token for an API registered on the
 * server, and the example resource server validates it offline from JWKS.
 */
import type { Server } from 'node:http';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer } from '../../examples/resource-server/src/app.js';
import { API, createServiceClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

const OTHER_API = 'https://reports.example.test';
const OPAQUE_API = 'https://legacy.example.test';

let server: TestServer;
let api: Server;
let apiUrl: string;

beforeAll(async () => {
  server = await startTestServer();
  const { apis } = server.services;
  await apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read', 'messages:write'], isDefault: true, accessTokenTtl: 300 });
  await apis.create({ indicator: OTHER_API, name: 'Reports', scopes: ['reports:read'] });
  await apis.create({ indicator: OPAQUE_API, name: 'Legacy', scopes: ['legacy'], accessTokenFormat: 'opaque' });
  const app = await createResourceServer({ issuer: server.issuer, audience: API });
  api = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => api.once('listening', resolve));
  const address = api.address();
  apiUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => {
  api.closeAllConnections();
  await new Promise((resolve) => api.close(resolve));
  await server.close();
});

const callApi = (path: string, token: string) => fetch(`${apiUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });

describe('service (client credentials)', () => {
  test('gets an RFC 9068 JWT for the default API when it names no resource', async () => {
    const { clientId, secret } = await createServiceClient(server, { scope: 'messages:read' });
    const config = await discover(server, clientId, secret);
    const tokens = await oidc.clientCredentialsGrant(config);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${server.issuer}/jwks`)), {
      issuer: server.issuer,
      audience: API,
      typ: 'at+jwt',
    });
    expect(payload).toMatchObject({ client_id: clientId, scope: 'messages:read', aud: API });
    expect(payload.exp! - payload.iat!).toBe(300); // the API's own token lifetime
  });

  test('can name another API and is limited to that API’s scopes', async () => {
    const { clientId, secret } = await createServiceClient(server, { scope: 'reports:read messages:read' });
    const config = await discover(server, clientId, secret);
    const tokens = await oidc.clientCredentialsGrant(config, { resource: OTHER_API, scope: 'reports:read messages:read' });
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ aud: OTHER_API, scope: 'reports:read' });
  });

  test('a service gets only the scopes it is registered with (least privilege)', async () => {
    const unscoped = await createServiceClient(server);
    const tokens = await oidc.clientCredentialsGrant(await discover(server, unscoped.clientId, unscoped.secret));
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims.aud).toBe(API);
    expect(claims.scope).toBeUndefined();
    expect((await callApi('/messages', tokens.access_token)).status).toBe(403);
  });

  test('asking only for scopes it may not have is invalid_scope, naming what it may have; asking for some it may, it gets those, listed', async () => {
    const unscoped = await createServiceClient(server);
    await expect(oidc.clientCredentialsGrant(await discover(server, unscoped.clientId, unscoped.secret), { scope: 'messages:write' })).rejects.toMatchObject({
      error: 'invalid_scope',
      error_description: `the client may not have messages:write on ${API}: it is registered with none of its scopes`,
    });
    const reader = await createServiceClient(server, { scope: 'messages:read' });
    const readerRp = await discover(server, reader.clientId, reader.secret);
    await expect(oidc.clientCredentialsGrant(readerRp, { scope: 'messages:write messages:admin' })).rejects.toMatchObject({
      error: 'invalid_scope',
      error_description: `the client may not have messages:write messages:admin on ${API}: it may have messages:read`,
    });
    const some = await oidc.clientCredentialsGrant(readerRp, { scope: 'messages:read messages:write' });
    expect(some.scope).toBe('messages:read');
  });

  test('an unknown resource indicator is an invalid_target error', async () => {
    const { clientId, secret } = await createServiceClient(server);
    const config = await discover(server, clientId, secret);
    await expect(oidc.clientCredentialsGrant(config, { resource: 'https://nowhere.example.test' })).rejects.toMatchObject({
      error: 'invalid_target',
    });
  });

  test('an API with opaque tokens gets introspectable tokens', async () => {
    const { clientId, secret } = await createServiceClient(server, { scope: 'legacy' });
    const config = await discover(server, clientId, secret);
    const tokens = await oidc.clientCredentialsGrant(config, { resource: OPAQUE_API });
    expect(tokens.access_token).toMatch(/^[A-Za-z0-9_-]{45}$/); // opaque, of its kind's length (src/oidc/opaque-tokens.ts)
    const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(introspection).toMatchObject({ active: true, client_id: clientId, aud: OPAQUE_API, scope: 'legacy' });
  });

  test('the example resource server accepts the token and enforces scope and role', async () => {
    const reader = await createServiceClient(server, { scope: 'messages:read', roles: ['admin'] });
    const readerToken = (await oidc.clientCredentialsGrant(await discover(server, reader.clientId, reader.secret))).access_token;
    expect((await callApi('/messages', readerToken)).status).toBe(200);
    expect((await callApi('/admin', readerToken)).status).toBe(200);
    const write = await fetch(`${apiUrl}/messages`, { method: 'POST', headers: { authorization: `Bearer ${readerToken}` } });
    expect(write.status).toBe(403);
    expect(write.headers.get('www-authenticate')).toMatch(/insufficient_scope/);

    const plain = await createServiceClient(server, { scope: 'messages:read', roles: [] });
    const plainToken = (await oidc.clientCredentialsGrant(await discover(server, plain.clientId, plain.secret))).access_token;
    expect((await callApi('/messages', plainToken)).status).toBe(200);
    expect((await callApi('/admin', plainToken)).status).toBe(403);

    const other = await createServiceClient(server);
    const otherToken = (await oidc.clientCredentialsGrant(await discover(server, other.clientId, other.secret), { resource: OTHER_API }))
      .access_token;
    const wrongAudience = await callApi('/messages', otherToken);
    expect(wrongAudience.status).toBe(401);
    expect(wrongAudience.headers.get('www-authenticate')).toMatch(/invalid_token/);
  });
});

describe('where signatures are made', () => {
  test('signed on the thread pool instead of in line, the JWKS and the tokens are the same', async () => {
    // The same keys folder: the two servers must publish exactly the same keys.
    const pooled = await startTestServer({ keysDir: server.config.keys.dir, env: { SIGNING_THREAD: 'pool' } });
    try {
      expect(server.config.keys.signInline).toBe(true);
      expect(pooled.config.keys.signInline).toBe(false);
      const jwks = async (issuer: string) => (await fetch(`${issuer}/jwks`)).json();
      expect(await jwks(pooled.issuer)).toEqual(await jwks(server.issuer));

      await pooled.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read'], isDefault: true });
      const { clientId, secret } = await createServiceClient(pooled, { scope: 'messages:read' });
      const token = (await oidc.clientCredentialsGrant(await discover(pooled, clientId, secret))).access_token;
      // Verified against the keys the in-line server publishes.
      const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${server.issuer}/jwks`)), { audience: API, typ: 'at+jwt' });
      expect(payload).toMatchObject({ client_id: clientId, iss: pooled.issuer });
    } finally {
      await pooled.close();
    }
  });
});
