/**
 * PS256, ES256 and EdDSA beside RS256: keys/ may hold an RSA key named for PS256, an EC P-256 key and an Ed25519 key
 * (`authz keys rotate --alg <alg>`), which the JWKS publishes and discovery offers; a client registered with
 * signingAlg PS256, ES256 or EdDSA gets its ID tokens, JARM responses and signed userinfo signed with it
 * (openid-client told to expect the algorithm checks each; jose verifies the ID token against the JWKS), while
 * access tokens and every other client stay RS256. An API registered with signingAlg gets its JWT access tokens
 * signed with it (client credentials, sign-ins and token exchange), which it verifies from the JWKS. Signed on the
 * event loop (the tests' default) and on the thread pool. A server without a key for the algorithm refuses such a
 * client or API by name, and a request for an API whose key was taken away is invalid_target, not a 500.
 */
import { mkdtemp, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { writeNewKey } from '../../src/keys/signing-keys.js';
import { adminApiOf } from '../support/admin-api.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import {
  API,
  type Fixtures,
  REDIRECT_URI,
  authorizationRequestUrl,
  authorize,
  createServiceClient,
  createSpaClient,
  createUser,
  createWebClient,
  discover,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let keysDir: string;
let server: TestServer;
let pooled: TestServer;
let user: Fixtures;

beforeAll(async () => {
  keysDir = await mkdtemp(path.join(tmpdir(), 'authz-es256-'));
  const activatesAt = new Date(Date.now() - 3_600_000);
  await writeNewKey(keysDir, { activatesAt });
  for (const alg of ['PS256', 'ES256', 'EdDSA'] as const) await writeNewKey(keysDir, { activatesAt, alg });
  server = await startTestServer({ keysDir });
  // A second instance signing on the thread pool (SIGNING_THREAD=pool), as with spare cores.
  pooled = await startTestServer({ instanceOf: server, env: { SIGNING_THREAD: 'pool' } });
  await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read'], isDefault: true });
  user = await createUser(server);
});
afterAll(async () => {
  await pooled?.close();
  await server?.close();
});

test('discovery offers PS256, ES256 and EdDSA beside RS256 for everything signed for clients, and the JWKS publishes their keys', async () => {
  const doc = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  for (const name of ['id_token', 'userinfo', 'authorization', 'introspection']) {
    expect({ name, algs: new Set(doc[`${name}_signing_alg_values_supported`] as string[]) }).toEqual({ name, algs: new Set(['RS256', 'PS256', 'ES256', 'EdDSA']) });
  }
  const { keys } = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: Record<string, unknown>[] };
  expect(keys.map((key) => [key.kty, key.alg, key.crv]).sort()).toEqual([
    ['EC', 'ES256', 'P-256'],
    ['OKP', 'EdDSA', 'Ed25519'],
    ['RSA', 'PS256', undefined],
    ['RSA', 'RS256', undefined],
  ]);
  expect(keys.filter((key) => 'd' in key)).toEqual([]);
});

test.each(['PS256', 'EdDSA'])('a client registered with signingAlg %s gets ID tokens, JARM responses and userinfo signed with it, in line and on the pool', async (alg) => {
  const admin = await adminApiOf(server);
  const created = await admin.call('POST', '/clients', { type: 'web', name: `${alg} app`, redirectUris: [REDIRECT_URI], firstParty: true, signingAlg: alg, signedUserinfo: true });
  expect(created).toMatchObject({ status: 201, body: { signingAlg: alg, signedUserinfo: true } });
  await signsEverythingWith(created.body.clientId, created.body.clientSecret, alg);
});

test('a client registered with signingAlg ES256 gets ES256 ID tokens, JARM responses and userinfo; its access tokens and other clients stay RS256', async () => {
  const admin = await adminApiOf(server);
  const created = await admin.call('POST', '/clients', { type: 'web', name: 'ES256 app', redirectUris: [REDIRECT_URI], firstParty: true, signingAlg: 'ES256', signedUserinfo: true });
  expect(created).toMatchObject({ status: 201, body: { signingAlg: 'ES256', signedUserinfo: true } });
  const { clientId, clientSecret } = created.body;
  const expectations = await signsEverythingWith(clientId, clientSecret, 'ES256');

  // An API's access token is what every API checks: RS256, whatever the client's algorithm.
  const app = await discover(server, clientId, expectations);
  const forApi = await authorize(app, user, { scope: 'openid messages:read', resource: API });
  const apiTokens = await oidc.authorizationCodeGrant(app, forApi.callbackUrl, { pkceCodeVerifier: forApi.codeVerifier, expectedState: forApi.state, expectedNonce: forApi.nonce });
  expect(decodeProtectedHeader(apiTokens.access_token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
  expect(decodeProtectedHeader(apiTokens.id_token ?? '')).toMatchObject({ alg: 'ES256' });

  const other = await createWebClient(server, { firstParty: true });
  const otherApp = await discover(server, other.clientId, other.secret);
  const flow = await authorize(otherApp, user, { scope: 'openid' });
  const tokens = await oidc.authorizationCodeGrant(otherApp, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
  expect(decodeProtectedHeader(tokens.id_token ?? '')).toMatchObject({ alg: 'RS256' });

  // Back to RS256 through the admin API: the next ID token says so.
  expect(await admin.call('PATCH', `/clients/${clientId}`, { signingAlg: 'RS256' })).toMatchObject({ status: 200, body: { signingAlg: 'RS256' } });
  const back = await discover(server, clientId, clientSecret);
  const again = await authorize(back, user, { scope: 'openid' });
  const rs256 = await oidc.authorizationCodeGrant(back, again.callbackUrl, { pkceCodeVerifier: again.codeVerifier, expectedState: again.state, expectedNonce: again.nonce });
  expect(decodeProtectedHeader(rs256.id_token ?? '')).toMatchObject({ alg: 'RS256' });
});

test('a server whose keys/ holds no ES256 key refuses signingAlg ES256 by name; `authz keys rotate --alg ES256` adds one; taken away again, the client is refused with the reason', async () => {
  const plain = await startTestServer();
  try {
    const problem = /signingAlg: this server has no ES256 key: add one with `authz keys rotate --alg ES256 --activate-in 0`/;
    await expect(plain.services.clients.create({ type: 'web', name: 'x', redirectUris: [REDIRECT_URI], signingAlg: 'ES256' })).rejects.toThrow(problem);
    const { client, secret } = await plain.services.clients.create({ type: 'web', name: 'y', redirectUris: [REDIRECT_URI], firstParty: true });
    await expect(plain.services.clients.update(client.clientId, { signingAlg: 'ES256' })).rejects.toThrow(problem);
    const apiProblem = /signingAlg: this server has no ES256 key: add one with `authz keys rotate --alg ES256 --activate-in 0`, then register the API/;
    await expect(plain.services.apis.create({ indicator: 'https://ledger.example.test', name: 'Ledger', signingAlg: 'ES256' })).rejects.toThrow(apiProblem);

    const env = cleanEnvironment(plain.env);
    const rotated = await runToEnd('src/cli.ts', ['keys', 'rotate', '--alg', 'ES256', '--activate-in', '0', '--json'], env);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ alg: 'ES256', created: true, kid: expect.stringMatching(/-es256$/) });
    const listed = JSON.parse((await runToEnd('src/cli.ts', ['keys', 'list', '--json'], env)).stdout) as { alg: string; state: string }[];
    expect(listed.map(({ alg, state }) => `${alg} ${state}`).sort()).toEqual(['ES256 current', 'RS256 current']);
    await plain.server.reloadKeys();
    expect((await plain.services.clients.update(client.clientId, { signingAlg: 'ES256' })).signingAlg).toBe('ES256');
    await signsWith(plain, client.clientId, secret ?? '', 'ES256');
    const ledger = await plain.services.apis.create({ indicator: 'https://ledger.example.test', name: 'Ledger', signingAlg: 'ES256' });
    const service = await createServiceClient(plain);

    // The ES256 key taken away again: the client cannot be served, and says why, rather than failing at signing.
    await unlink(path.join(plain.config.keys.dir, `${JSON.parse(rotated.stdout).kid}.pem`));
    await plain.server.reloadKeys();
    const flow = await fetch(authorizationRequestUrl(plain, client.clientId).href.replace(plain.issuer, plain.url), { redirect: 'manual' });
    expect(flow.status).toBe(400);
    expect(await flow.text()).toMatch(/id_token_signed_response_alg/);
    // So is a token for the API that wants it: invalid_target, naming the API and the algorithm.
    const forLedger = await fetch(`${plain.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${service.clientId}:${service.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: ledger.indicator }),
    });
    expect(forLedger.status).toBe(400);
    expect(await forLedger.json()).toEqual({ error: 'invalid_target', error_description: 'https://ledger.example.test has its access tokens signed ES256, and this server has no ES256 key' });
    const refused = await runToEnd('src/cli.ts', ['keys', 'rotate', '--alg', 'HS256'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/argument 'HS256' is invalid. Allowed choices are RS256, PS256, ES256, EdDSA/);
  } finally {
    await plain.close();
  }
});

test('an API registered with signingAlg ES256, PS256 or EdDSA gets its JWT access tokens signed with it; the admin API stays RS256', async () => {
  const admin = await adminApiOf(server);
  const service = await createServiceClient(server, { scope: 'ledger:read' });
  for (const alg of ['ES256', 'PS256', 'EdDSA']) {
    const indicator = `https://ledger-${alg.toLowerCase()}.example.test`;
    const created = await admin.call('POST', '/apis', { indicator, name: `Ledger ${alg}`, scopes: ['ledger:read'], signingAlg: alg });
    expect(created).toMatchObject({ status: 201, body: { indicator, signingAlg: alg, accessTokenFormat: 'jwt' } });
    for (const instance of [server, pooled]) {
      const app = await discover(instance, service.clientId, service.secret);
      const { access_token: token } = await oidc.clientCredentialsGrant(app, { resource: indicator });
      expect(decodeProtectedHeader(token)).toMatchObject({ alg, typ: 'at+jwt' });
      const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${instance.url}/jwks`)), { issuer: server.issuer, audience: indicator, algorithms: [alg], typ: 'at+jwt' });
      expect(payload).toMatchObject({ client_id: service.clientId, scope: 'ledger:read' });
    }
  }
  // An API registered without one, and the admin API's own tokens: RS256.
  const plainApi = await oidc.clientCredentialsGrant(await discover(server, service.clientId, service.secret), { resource: API });
  expect(decodeProtectedHeader(plainApi.access_token)).toMatchObject({ alg: 'RS256' });
  expect(decodeProtectedHeader(admin.token)).toMatchObject({ alg: 'RS256' });
  expect((await admin.call('GET', '/apis')).body.apis).toEqual(expect.arrayContaining([expect.objectContaining({ indicator: API, signingAlg: 'RS256' })]));

  // Changed back to RS256 through the admin API: the next token says so.
  const indicator = 'https://ledger-es256.example.test';
  expect(await admin.call('PATCH', `/apis/${encodeURIComponent(indicator)}`, { signingAlg: 'RS256' })).toMatchObject({ status: 200, body: { signingAlg: 'RS256' } });
  const again = await oidc.clientCredentialsGrant(await discover(server, service.clientId, service.secret), { resource: indicator });
  expect(decodeProtectedHeader(again.access_token)).toMatchObject({ alg: 'RS256' });
});

test('a user’s ES256 token to an API is exchanged by its back end (RFC 8693) for an EdDSA token to another', async () => {
  const { apis, clients } = server.services;
  const orders = 'https://orders-es256.example.test';
  const stock = 'https://stock-eddsa.example.test';
  await apis.create({ indicator: orders, name: 'Orders', scopes: ['orders:read'], signingAlg: 'ES256' });
  await apis.create({ indicator: stock, name: 'Stock', scopes: ['stock:read'], signingAlg: 'EdDSA' });
  const backEnd = await clients.create({ type: 'service', name: 'Orders back end', scope: 'stock:read', tokenExchangeFrom: [orders] });
  const { clientId: spaId } = await createSpaClient(server);
  const spa = await discover(server, spaId, undefined, oidc.None());
  const flow = await authorize(spa, user, { scope: 'openid orders:read', resource: orders });
  const { access_token: subject } = await oidc.authorizationCodeGrant(spa, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
  expect(decodeProtectedHeader(subject)).toMatchObject({ alg: 'ES256' });

  const backEndApp = await discover(server, backEnd.client.clientId, backEnd.secret);
  const exchanged = await oidc.genericGrantRequest(backEndApp, 'urn:ietf:params:oauth:grant-type:token-exchange', {
    subject_token: subject,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    resource: stock,
  });
  expect(decodeProtectedHeader(exchanged.access_token)).toMatchObject({ alg: 'EdDSA' });
  const { payload } = await jwtVerify(exchanged.access_token, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.issuer, audience: stock, algorithms: ['EdDSA'] });
  expect(payload).toMatchObject({ sub: user.userId, act: { sub: backEnd.client.clientId } });
});

/**
 * Signs the test's user in to `clientId` on both instances (signing in line and on the pool), with the JARM
 * response mode and signed userinfo: each must be signed with `alg`. Returns what openid-client was told to expect.
 */
async function signsEverythingWith(clientId: string, clientSecret: string, alg: string) {
  const expectations = { client_secret: clientSecret, id_token_signed_response_alg: alg, userinfo_signed_response_alg: alg, authorization_signed_response_alg: alg };
  for (const instance of [server, pooled]) {
    const app = await discover(instance, clientId, expectations);
    oidc.useJwtResponseMode(app);
    const flow = await authorize(app, user, { scope: 'openid email' });
    expect(decodeProtectedHeader(flow.callbackUrl.searchParams.get('response') ?? '')).toMatchObject({ alg });
    const tokens = await oidc.authorizationCodeGrant(app, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    expect(decodeProtectedHeader(tokens.id_token ?? '')).toMatchObject({ alg });
    const { payload } = await jwtVerify(tokens.id_token ?? '', createRemoteJWKSet(new URL(`${instance.url}/jwks`)), { issuer: server.issuer, audience: clientId, algorithms: [alg] });
    expect(payload.sub).toBe(user.userId);
    expect(await oidc.fetchUserInfo(app, tokens.access_token, user.userId)).toMatchObject({ email: user.email });
  }
  return expectations;
}

/** Signs a person in to `clientId` on `instance`: its ID token must be signed with `alg`. */
async function signsWith(instance: TestServer, clientId: string, secret: string, alg: string) {
  const person = await createUser(instance);
  const app = await discover(instance, clientId, { client_secret: secret, id_token_signed_response_alg: alg });
  const flow = await authorize(app, person, { scope: 'openid' });
  const tokens = await oidc.authorizationCodeGrant(app, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
  expect(decodeProtectedHeader(tokens.id_token ?? '')).toMatchObject({ alg });
}
