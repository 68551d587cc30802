/**
 * Responses encrypted to a client's own key (OpenID Connect Core §10.2, `responseEncryption`): its ID tokens,
 * JARM responses, signed userinfo and JWT introspection answers are signed, then encrypted (nested JWT, JWE), so
 * that only the app reads them. openid-client, given the app's private key, decrypts and checks each; the raw
 * responses are looked at too. RSA-OAEP-256 through the admin API, ECDH-ES through self-registration (RFC 7591);
 * what cannot work (no key that fits, RSA1_5, an enc without its alg) is refused with the reason. Over HTTP, on
 * PostgreSQL and Redis.
 */
import { type CryptoKey, type JWK, compactDecrypt, createRemoteJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { adminApiOf } from '../support/admin-api.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { type Fixtures, REDIRECT_URI, authorize, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
let user: Fixtures;

beforeAll(async () => {
  server = await startTestServer({ env: { CLIENT_REGISTRATION: 'open' } });
  user = await createUser(server);
});
afterAll(() => server.close());

/**
 * A key pair of the app's for `alg`: its public JWK as the app registers it, and its private key as openid-client
 * takes it to decrypt (with the kid, which it matches against the JWE's).
 */
async function appKey(alg: string, kid: string, options: { crv?: string } = {}): Promise<{ privateKey: CryptoKey; decryption: oidc.DecryptionKey; jwk: JWK }> {
  const pair = await generateKeyPair(alg, { extractable: true, ...options });
  return { privateKey: pair.privateKey, decryption: { key: pair.privateKey, kid }, jwk: { ...(await exportJWK(pair.publicKey)), kid, use: 'enc', alg } };
}

/** A JWE's protected header, and the JWS inside it once decrypted with `key`. */
async function opened(jwe: string, key: CryptoKey) {
  expect(jwe.split('.')).toHaveLength(5);
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, key);
  return { header: protectedHeader, inner: new TextDecoder().decode(plaintext) };
}

/** `jws` checked against our JWKS: its claims. */
async function verified(jws: string, audience: string) {
  const { payload } = await jwtVerify(jws, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.issuer, audience, algorithms: ['RS256'] });
  return payload;
}

test('RSA-OAEP-256 through the admin API: ID token, JARM response and userinfo come encrypted to the app, which decrypts each', async () => {
  const key = await appKey('RSA-OAEP-256', 'app-enc-1');
  const admin = await adminApiOf(server);
  const created = await admin.call('POST', '/clients', {
    type: 'web',
    name: 'Encrypted app',
    redirectUris: [REDIRECT_URI],
    firstParty: true,
    jwks: { keys: [key.jwk] },
    signedUserinfo: true,
    responseEncryption: { alg: 'RSA-OAEP-256', enc: 'A256GCM' },
  });
  expect(created).toMatchObject({ status: 201, body: { responseEncryption: { alg: 'RSA-OAEP-256', enc: 'A256GCM' } } });
  const { clientId, clientSecret } = created.body;
  const metadata = {
    client_secret: clientSecret,
    id_token_encrypted_response_alg: 'RSA-OAEP-256',
    id_token_encrypted_response_enc: 'A256GCM',
    userinfo_signed_response_alg: 'RS256',
    userinfo_encrypted_response_alg: 'RSA-OAEP-256',
    userinfo_encrypted_response_enc: 'A256GCM',
  };

  // What the token endpoint sends: a JWE whose content is our signed ID token, for this app.
  const app = await discover(server, clientId, metadata);
  oidc.enableDecryptingResponses(app, ['A256GCM'], key.decryption);
  const flow = await authorize(app, user, { scope: 'openid email' });
  const tokens = await oidc.authorizationCodeGrant(app, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
  expect(tokens.claims()).toMatchObject({ sub: user.userId, aud: clientId, email: user.email });
  const { header, inner } = await opened(tokens.id_token ?? '', key.privateKey);
  expect(header).toMatchObject({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT', kid: 'app-enc-1' });
  expect(await verified(inner, clientId)).toMatchObject({ sub: user.userId, nonce: flow.nonce });

  // Userinfo: a signed JWT, encrypted.
  expect(await oidc.fetchUserInfo(app, tokens.access_token, user.userId)).toMatchObject({ sub: user.userId, email: user.email });
  const raw = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  expect(raw.headers.get('content-type')).toMatch(/^application\/jwt/);
  expect((await opened(await raw.text(), key.privateKey)).header).toMatchObject({ alg: 'RSA-OAEP-256', cty: 'JWT' });

  // JARM: the authorization response, encrypted as well; openid-client decrypts it before reading the code.
  const jarm = await discover(server, clientId, { ...metadata, authorization_encrypted_response_alg: 'RSA-OAEP-256', authorization_encrypted_response_enc: 'A256GCM' });
  oidc.useJwtResponseMode(jarm);
  oidc.enableDecryptingResponses(jarm, ['A256GCM'], key.decryption);
  const jarmFlow = await authorize(jarm, user, { scope: 'openid' });
  const response = jarmFlow.callbackUrl.searchParams.get('response') ?? '';
  expect((await opened(response, key.privateKey)).header).toMatchObject({ alg: 'RSA-OAEP-256', enc: 'A256GCM' });
  const jarmTokens = await oidc.authorizationCodeGrant(jarm, jarmFlow.callbackUrl, { pkceCodeVerifier: jarmFlow.codeVerifier, expectedState: jarmFlow.state, expectedNonce: jarmFlow.nonce });
  expect(jarmTokens.claims()?.sub).toBe(user.userId);

  // Turned off through the admin API: the next ID token is a plain signed JWT again.
  expect(await admin.call('PATCH', `/clients/${clientId}`, { responseEncryption: null })).toMatchObject({ status: 200, body: { responseEncryption: null } });
  const plain = await discover(server, clientId, clientSecret);
  const again = await authorize(plain, user, { scope: 'openid' });
  const plainTokens = await oidc.authorizationCodeGrant(plain, again.callbackUrl, { pkceCodeVerifier: again.codeVerifier, expectedState: again.state, expectedNonce: again.nonce });
  expect(plainTokens.id_token?.split('.')).toHaveLength(3);
});

test('an API whose client registered encryption gets its JWT introspection answer encrypted (RFC 9701 §5)', async () => {
  const key = await appKey('ECDH-ES+A256KW', 'api-enc-1');
  const { client, secret } = await server.services.clients.create({
    type: 'service',
    name: 'Ledger API',
    jwks: { keys: [key.jwk] },
    responseEncryption: { alg: 'ECDH-ES+A256KW', enc: 'A128GCM' },
  });
  const { clientId: shopId, secret: shopSecret } = await createWebClient(server, { firstParty: true });
  const shopApp = await discover(server, shopId, shopSecret);
  const flow = await authorize(shopApp, user, { scope: 'openid' });
  const tokens = await oidc.authorizationCodeGrant(shopApp, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });

  const answer = await fetch(`${server.url}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client.clientId}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/token-introspection+jwt',
    },
    body: new URLSearchParams({ token: tokens.access_token }),
  });
  expect(answer.status).toBe(200);
  expect(answer.headers.get('content-type')).toMatch(/^application\/token-introspection\+jwt/);
  const { header, inner } = await opened(await answer.text(), key.privateKey);
  expect(header).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A128GCM', cty: 'JWT' });
  expect(decodeProtectedHeader(inner)).toMatchObject({ typ: 'token-introspection+jwt' });
  expect((await verified(inner, client.clientId)).token_introspection).toMatchObject({ active: true, sub: user.userId, client_id: shopId });
});

describe('self-registration (RFC 7591)', () => {
  test('ECDH-ES with an X25519 key: the app registers it, is told so back, and decrypts its ID tokens', async () => {
    const key = await appKey('ECDH-ES', 'x25519-1', { crv: 'X25519' });
    const registered = await oidc.dynamicClientRegistration(
      new URL(server.issuer),
      { redirect_uris: [REDIRECT_URI], jwks: { keys: [{ ...key.jwk, alg: undefined }] }, id_token_encrypted_response_alg: 'ECDH-ES' },
      undefined,
      { execute: [oidc.allowInsecureRequests] },
    );
    // The spec's default content encryption, named for every response the client gets encrypted.
    expect(registered.clientMetadata()).toMatchObject({
      id_token_encrypted_response_alg: 'ECDH-ES',
      id_token_encrypted_response_enc: 'A128CBC-HS256',
      authorization_encrypted_response_alg: 'ECDH-ES',
      introspection_encrypted_response_enc: 'A128CBC-HS256',
    });
    expect(registered.clientMetadata().userinfo_encrypted_response_alg).toBeUndefined();
    oidc.enableDecryptingResponses(registered, ['A128CBC-HS256'], key.decryption);
    const flow = await authorize(registered, user, { scope: 'openid email', prompt: 'consent' });
    const tokens = await oidc.authorizationCodeGrant(registered, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    expect((await opened(tokens.id_token ?? '', key.privateKey)).header).toMatchObject({ alg: 'ECDH-ES', enc: 'A128CBC-HS256', epk: { crv: 'X25519' } });
    expect(tokens.claims()?.sub).toBe(user.userId);
  });

  test('what cannot work is invalid_client_metadata with the reason', async () => {
    const rsa = await appKey('RSA-OAEP-256', 'rsa-1');
    const ec = await appKey('ECDH-ES', 'ec-1');
    const cases: [Record<string, unknown>, string][] = [
      [{ id_token_encrypted_response_alg: 'RSA1_5', jwks: { keys: [rsa.jwk] } }, 'id_token_encrypted_response_alg: responses are encrypted here with RSA-OAEP-256, RSA-OAEP, ECDH-ES'],
      [{ id_token_encrypted_response_alg: 'A128KW' }, 'public-key algorithms'],
      [{ id_token_encrypted_response_enc: 'A256GCM' }, 'id_token_encrypted_response_enc: give id_token_encrypted_response_alg too'],
      [{ id_token_encrypted_response_alg: 'RSA-OAEP-256' }, 'id_token_encrypted_response_alg: responses are encrypted to the client’s own public key: register its keys (a JWK Set or its URL) too'],
      [{ id_token_encrypted_response_alg: 'RSA-OAEP-256', jwks: { keys: [ec.jwk] } }, 'RSA-OAEP-256 needs an RSA key in jwks with use "enc" (or none) and no other alg'],
      [{ id_token_encrypted_response_alg: 'ECDH-ES', jwks: { keys: [{ ...ec.jwk, use: 'sig' }] } }, 'ECDH-ES needs an EC P-256 or X25519 key in jwks'],
      [
        { id_token_encrypted_response_alg: 'RSA-OAEP-256', authorization_encrypted_response_alg: 'RSA-OAEP', jwks: { keys: [rsa.jwk] } },
        'authorization_encrypted_response_alg: everything encrypted for one client is encrypted one way here: give the same as id_token_encrypted_response_alg',
      ],
      [
        { id_token_encrypted_response_alg: 'RSA-OAEP-256', introspection_encrypted_response_alg: 'RSA-OAEP-256', introspection_encrypted_response_enc: 'A256GCM', jwks: { keys: [rsa.jwk] } },
        'introspection_encrypted_response_enc: everything encrypted for one client is encrypted one way here: give the same as id_token_encrypted_response_enc',
      ],
      [{ userinfo_encrypted_response_alg: 'RSA-OAEP-256', jwks: { keys: [rsa.jwk] } }, 'userinfo is encrypted here only as a signed JWT: give userinfo_signed_response_alg too'],
    ];
    for (const [metadata, said] of cases) {
      const response = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT_URI], ...metadata }) });
      const body = (await response.json()) as Record<string, unknown>;
      expect({ metadata, status: response.status, error: body.error }).toEqual({ metadata, status: 400, error: 'invalid_client_metadata' });
      expect({ metadata, said: String(body.error_description) }).toEqual({ metadata, said: expect.stringContaining(said) });
    }
  });
});

test('the CLI sets and lifts it; an --encryption-enc without its alg is a usage error', async () => {
  const key = await appKey('RSA-OAEP', 'cli-1');
  const { client } = await server.services.clients.create({ type: 'web', name: 'CLI app', redirectUris: [REDIRECT_URI], jwks: { keys: [key.jwk] } });
  const env = cleanEnvironment(server.env);
  const cli = (...args: string[]) => runToEnd('src/cli.ts', ['clients', 'update', client.clientId, ...args, '--json'], env);
  expect(JSON.parse((await cli('--encrypt-responses', 'RSA-OAEP', '--encryption-enc', 'A256GCM')).stdout)).toMatchObject({ response_encryption: { alg: 'RSA-OAEP', enc: 'A256GCM' } });
  expect(JSON.parse((await cli('--no-encrypt-responses')).stdout)).toMatchObject({ response_encryption: null });
  const usage = await cli('--encryption-enc', 'A256GCM');
  expect({ code: usage.code, stderr: usage.stderr }).toEqual({ code: 2, stderr: expect.stringContaining('--encryption-enc goes with --encrypt-responses <alg>') });
  const refused = await cli('--encrypt-responses', 'ECDH-ES');
  expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 1, stderr: expect.stringContaining('responseEncryption: ECDH-ES needs an EC P-256 or X25519 key in jwks') });
});
