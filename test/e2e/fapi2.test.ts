/**
 * The FAPI 2.0 Security Profile for one client (`fapi2`): what it registers must fit the profile, and the server
 * then holds it to the rest. A web app with private_key_jwt (its own ES256 key), DPoP and ES256, PS256 or EdDSA
 * ID tokens (the profile's three algorithms) signs a person in through PAR with PKCE, as openid-client does it, and
 * refreshes without rotation; a plain or PKCE-less request, and a token request without its DPoP proof, are OAuth
 * errors. Over HTTP, on PostgreSQL and Redis, with ES256, PS256 and EdDSA keys in keys/ beside the RS256 one.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type CryptoKey, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import type { NewClient } from '../../src/clients/clients.js';
import { writeNewKey } from '../../src/keys/signing-keys.js';
import { adminApiOf } from '../support/admin-api.js';
import { type Fixtures, PASSWORD, REDIRECT_URI, createUser, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { UserAgent, signIn } from '../support/user-agent.js';

let server: TestServer;
let user: Fixtures;
let privateKey: CryptoKey;
let jwks: NonNullable<NewClient['jwks']>;

beforeAll(async () => {
  const keysDir = await mkdtemp(path.join(tmpdir(), 'authz-fapi-'));
  const activatesAt = new Date(Date.now() - 3_600_000);
  await writeNewKey(keysDir, { activatesAt });
  for (const alg of ['ES256', 'PS256', 'EdDSA'] as const) await writeNewKey(keysDir, { activatesAt, alg });
  server = await startTestServer({ keysDir });
  user = await createUser(server);
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'bank-app-1', alg: 'ES256', use: 'sig' }] };
});
afterAll(() => server?.close());

/** What a FAPI 2.0 web app registers: its own key for private_key_jwt, DPoP, ES256. */
const FAPI_APP: NewClient = { type: 'web', name: 'Bank app', redirectUris: [REDIRECT_URI], tokenEndpointAuthMethod: 'private_key_jwt', requireDpop: true, signingAlg: 'ES256', fapi2: true, firstParty: true };

async function fapiApp(signingAlg = 'ES256') {
  const admin = await adminApiOf(server);
  const created = await admin.call('POST', '/clients', { ...FAPI_APP, jwks, signingAlg });
  expect(created).toMatchObject({ status: 201, body: { fapi2: true, requirePar: false, signingAlg } });
  const clientId = created.body.clientId as string;
  const config = await discover(server, clientId, { id_token_signed_response_alg: signingAlg }, oidc.PrivateKeyJwt(privateKey));
  return { clientId, config, DPoP: oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair()) };
}

async function codeRequest() {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const parameters = {
    redirect_uri: REDIRECT_URI,
    scope: 'openid offline_access',
    prompt: 'consent',
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  };
  return { parameters, codeVerifier };
}

test.each(['ES256', 'PS256', 'EdDSA'])('a FAPI 2.0 app signs a person in through PAR with PKCE and DPoP, gets %s ID tokens, and refreshes without rotation', async (alg) => {
  const { config, DPoP } = await fapiApp(alg);
  const { parameters, codeVerifier } = await codeRequest();
  const url = await oidc.buildAuthorizationUrlWithPAR(config, parameters, { DPoP });
  const { redirectedTo } = await signIn(new UserAgent(), url.href, { email: user.email, password: PASSWORD });
  // RFC 9207: the authorization response names its issuer, which openid-client checks.
  expect(redirectedTo.searchParams.get('iss')).toBe(server.issuer);
  const tokens = await oidc.authorizationCodeGrant(config, redirectedTo, { pkceCodeVerifier: codeVerifier, expectedState: parameters.state, expectedNonce: parameters.nonce }, undefined, { DPoP });
  expect(tokens.token_type).toBe('dpop');
  expect(decodeProtectedHeader(tokens.id_token ?? '')).toMatchObject({ alg });
  expect(tokens.claims()?.sub).toBe(user.userId);

  const refreshToken = tokens.refresh_token ?? '';
  const first = await oidc.refreshTokenGrant(config, refreshToken, undefined, { DPoP });
  const second = await oidc.refreshTokenGrant(config, refreshToken, undefined, { DPoP });
  expect([first.refresh_token, second.refresh_token]).toEqual([refreshToken, refreshToken]);
  expect(second.access_token).not.toBe(first.access_token);
});

test('what the profile forbids is an OAuth error: a request not pushed, a pushed one without PKCE, a token request without DPoP', async () => {
  const { config, DPoP } = await fapiApp();
  const { parameters, codeVerifier } = await codeRequest();

  const plain = await fetch(oidc.buildAuthorizationUrl(config, parameters).href.replace(server.issuer, server.url), { redirect: 'manual' });
  const refused = new URL(plain.headers.get('location') ?? '');
  expect({ error: refused.searchParams.get('error'), description: refused.searchParams.get('error_description') }).toEqual({
    error: 'invalid_request',
    description: 'Pushed Authorization Request must be used',
  });

  const { code_challenge: _challenge, code_challenge_method: _method, ...withoutPkce } = parameters;
  await expect(oidc.buildAuthorizationUrlWithPAR(config, withoutPkce, { DPoP })).rejects.toMatchObject({ error: 'invalid_request', error_description: 'Authorization Server policy requires PKCE to be used for this request' });

  const url = await oidc.buildAuthorizationUrlWithPAR(config, parameters, { DPoP });
  const { redirectedTo } = await signIn(new UserAgent(), url.href, { email: user.email, password: PASSWORD });
  // The code was bound to the DPoP key at PAR (dpop_jkt): without a proof of it, the code is refused (RFC 9449 §10).
  await expect(oidc.authorizationCodeGrant(config, redirectedTo, { pkceCodeVerifier: codeVerifier, expectedState: parameters.state, expectedNonce: parameters.nonce })).rejects.toMatchObject({
    error: 'invalid_grant',
  });
  // Nor is one pushed without DPoP redeemed without it: the client requires proofs (dpop_bound_access_tokens).
  const again = await codeRequest();
  const unbound = await oidc.buildAuthorizationUrlWithPAR(config, again.parameters);
  const signedIn = await signIn(new UserAgent(), unbound.href, { email: user.email, password: PASSWORD });
  await expect(oidc.authorizationCodeGrant(config, signedIn.redirectedTo, { pkceCodeVerifier: again.codeVerifier, expectedState: again.parameters.state, expectedNonce: again.parameters.nonce })).rejects.toMatchObject({
    error: 'invalid_grant',
  });
});

test('its client assertions must be signed PS256, ES256 or EdDSA: one signed RS256 is invalid_client', async () => {
  const rsa = await generateKeyPair('RS256');
  const { client } = await server.services.clients.create({ ...FAPI_APP, jwks: { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }] } });
  const config = await discover(server, client.clientId, { id_token_signed_response_alg: 'ES256' }, oidc.PrivateKeyJwt(rsa.privateKey));
  const { parameters } = await codeRequest();
  await expect(oidc.buildAuthorizationUrlWithPAR(config, parameters)).rejects.toMatchObject({ error: 'invalid_client' });
  await server.services.audit.flush();
  const [failure] = await queryAuditEvents(server.services.db, { type: 'client_auth_failed', clientId: client.clientId, limit: 1 });
  expect(JSON.stringify(failure?.detail)).toContain('a FAPI 2.0 client signs its client assertions with PS256, ES256, EdDSA, not RS256');
});

test('a registration that does not fit the profile is refused, naming each setting; an update may not break it', async () => {
  const { clients } = server.services;
  const cases: [Partial<NewClient>, RegExp][] = [
    [{ tokenEndpointAuthMethod: 'client_secret_basic', jwks: undefined }, /fapi2: a FAPI 2\.0 client authenticates with private_key_jwt, tls_client_auth or self_signed_tls_client_auth, not client_secret_basic/],
    [{ requireDpop: false }, /fapi2: a FAPI 2\.0 client’s tokens are sender-constrained: set requireDpop or certificateBoundTokens/],
    [{ signingAlg: 'RS256' }, /fapi2: FAPI 2\.0 allows PS256, ES256 or EdDSA signatures, not RS256: set signingAlg PS256, ES256 or EdDSA/],
    [{ redirectUris: ['http://localhost:8080/callback'] }, /fapi2: a FAPI 2\.0 client is sent back over https only, not to http:\/\/localhost:8080\/callback/],
  ];
  for (const [change, problem] of cases) {
    await expect(clients.create({ ...FAPI_APP, jwks, ...change } as NewClient)).rejects.toThrow(problem);
  }
  await expect(clients.create({ type: 'spa', name: 'Bank SPA', redirectUris: [REDIRECT_URI], requireDpop: true, signingAlg: 'ES256', fapi2: true })).rejects.toThrow(
    /fapi2: FAPI 2\.0 is for web clients \(confidential, authorization code flow\), not spa clients/,
  );

  const { client } = await clients.create({ ...FAPI_APP, jwks });
  await expect(clients.update(client.clientId, { requireDpop: false })).rejects.toThrow(/fapi2: a FAPI 2\.0 client’s tokens are sender-constrained/);
  await expect(clients.update(client.clientId, { signingAlg: 'RS256' })).rejects.toThrow(/fapi2: FAPI 2\.0 allows PS256, ES256 or EdDSA/);
  expect((await clients.update(client.clientId, { fapi2: false, signingAlg: 'RS256' })).fapi2).toBe(false);
});
