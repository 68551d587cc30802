/**
 * Signed responses, for apps and APIs that must be able to prove where an answer came from (FAPI's message
 * signing; Keycloak offers all three): the authorization response as a JWT (JARM, `response_mode=jwt`), token
 * introspection's as one (RFC 9701, `Accept: application/token-introspection+jwt`), and userinfo's for a client
 * registered with signedUserinfo (`userinfo_signed_response_alg`). openid-client checks each signature against
 * our JWKS; the raw answers are looked at too.
 */
import { type JWTPayload, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { adminApiOf } from '../support/admin-api.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { type Fixtures, PASSWORD, REDIRECT_URI, authorizationRequestUrl, authorize, codeFlowRequest, createServiceClient, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { UserAgent, parseForms, passSignInPages } from '../support/user-agent.js';

let server: TestServer;
let user: Fixtures;

beforeAll(async () => {
  server = await startTestServer();
  user = await createUser(server);
});
afterAll(() => server.close());

/** `jwt` checked with our published keys, as an app or API would: its claims. */
async function verified(jwt: string, audience: string): Promise<JWTPayload> {
  const keys = createRemoteJWKSet(new URL(`${server.url}/jwks`));
  const { payload, protectedHeader } = await jwtVerify(jwt, keys, { issuer: server.issuer, audience, algorithms: ['RS256'] });
  expect(protectedHeader.kid).toEqual(expect.any(String));
  return payload;
}

test('discovery names the signed responses and the one algorithm they are signed with, and the public-key encryption offered for them', async () => {
  const doc = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  expect(doc.response_modes_supported).toEqual(expect.arrayContaining(['query', 'form_post', 'jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt']));
  expect(doc).toMatchObject({
    authorization_signing_alg_values_supported: ['RS256'],
    introspection_signing_alg_values_supported: ['RS256'],
    userinfo_signing_alg_values_supported: ['RS256'],
  });
  // Encrypted to a client's own key (test/e2e/response-encryption.test.ts); nothing is encrypted to us.
  const encryption = Object.fromEntries(Object.entries(doc).filter(([key]) => key.includes('encryption')));
  for (const response of ['id_token', 'authorization', 'introspection', 'userinfo']) {
    expect(encryption[`${response}_encryption_alg_values_supported`]).toEqual(['RSA-OAEP-256', 'RSA-OAEP', 'ECDH-ES', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW']);
    expect(encryption[`${response}_encryption_enc_values_supported`]).toEqual(['A128CBC-HS256', 'A192CBC-HS384', 'A256CBC-HS512', 'A128GCM', 'A192GCM', 'A256GCM']);
  }
  expect(Object.keys(encryption).filter((key) => key.startsWith('request_object'))).toEqual([]);
});

describe('JARM: the authorization response as a signed JWT', () => {
  test('response_mode=jwt: the code comes back inside a JWT for this app, and openid-client redeems it', async () => {
    const { clientId, secret } = await createWebClient(server, { firstParty: true });
    const config = await discover(server, clientId, secret);
    oidc.useJwtResponseMode(config);
    const request = await codeFlowRequest(config, { scope: 'openid email' });
    expect(request.url.searchParams.get('response_mode')).toBe('jwt');
    const { redirectedTo } = await signInFrom(request.url);

    expect(`${redirectedTo.origin}${redirectedTo.pathname}`).toBe(REDIRECT_URI);
    expect([...redirectedTo.searchParams.keys()]).toEqual(['response']);
    const response = redirectedTo.searchParams.get('response') ?? '';
    expect(decodeProtectedHeader(response)).toMatchObject({ alg: 'RS256' });
    const claims = await verified(response, clientId);
    expect(claims).toMatchObject({ iss: server.issuer, aud: clientId, code: expect.any(String), state: request.state });
    // Short-lived, as a code is (JARM §2.1 wants a short expiry): two minutes.
    expect((claims.exp ?? 0) - Date.now() / 1000).toBeLessThanOrEqual(120);

    const tokens = await oidc.authorizationCodeGrant(config, redirectedTo, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, email: user.email });
  });

  test('a refusal is signed too: the person declines, and the app reads access_denied from the JWT', async () => {
    const { clientId, secret } = await createWebClient(server, { firstParty: false });
    const config = await discover(server, clientId, secret);
    oidc.useJwtResponseMode(config);
    const request = await codeFlowRequest(config);
    const { redirectedTo } = await signInFrom(request.url, { consent: 'deny' });
    expect([...redirectedTo.searchParams.keys()]).toEqual(['response']);
    expect(await verified(redirectedTo.searchParams.get('response') ?? '', clientId)).toMatchObject({ error: 'access_denied', state: request.state });
    await expect(oidc.authorizationCodeGrant(config, redirectedTo, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state })).rejects.toMatchObject({
      name: 'AuthorizationResponseError',
      error: 'access_denied',
    });
  });

  test('response_mode=form_post.jwt: the browser posts the JWT to the app, which redeems its code', async () => {
    const { clientId, secret } = await createWebClient(server, { firstParty: true });
    const config = await discover(server, clientId, secret);
    oidc.useJwtResponseMode(config);
    const request = await codeFlowRequest(config);
    // openid-client asks for `jwt` (the default mode, query for a code); this app wants the form post.
    request.url.searchParams.set('response_mode', 'form_post.jwt');
    const agent = new UserAgent();
    const { step } = await passSignInPages(agent, await agent.follow(request.url.href, server.issuer), server.issuer, { email: user.email, password: PASSWORD });
    const form = parseForms(step.page?.html ?? '').find((candidate) => candidate.action === REDIRECT_URI);
    expect(form?.fields.map((field) => field.name)).toEqual(['response']);
    const posted = new Request(REDIRECT_URI, { method: 'POST', body: new URLSearchParams({ response: form?.fields[0]?.value ?? '' }) });
    const tokens = await oidc.authorizationCodeGrant(config, posted, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
    expect(tokens.claims()?.sub).toBe(user.userId);
  });

  test('a response JWT made for another app is refused by the app', async () => {
    const first = await createWebClient(server, { firstParty: true });
    const other = await createWebClient(server, { firstParty: true });
    const config = await discover(server, first.clientId, first.secret);
    oidc.useJwtResponseMode(config);
    const otherConfig = await discover(server, other.clientId, other.secret);
    oidc.useJwtResponseMode(otherConfig);
    const request = await codeFlowRequest(otherConfig);
    const { redirectedTo } = await signInFrom(request.url);
    // Another app's response, replayed at this app's redirect URI: its audience gives it away.
    await expect(oidc.authorizationCodeGrant(config, redirectedTo, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state })).rejects.toMatchObject({
      code: 'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
      cause: { cause: { claim: 'aud', expected: first.clientId } },
    });
  });
});

test('a response mode that does not exist is unsupported_response_mode at the redirect URI, never a 500', async () => {
  const { clientId } = await createWebClient(server, { firstParty: true });
  for (const mode of ['jwt.query', 'web_message.jwt', 'JWT', 'query.jwt.jwt']) {
    const url = authorizationRequestUrl(server, clientId, { response_mode: mode, state: 'st' });
    const response = await fetch(url.href.replace(server.issuer, server.url), { redirect: 'manual' });
    expect({ mode, status: response.status }).toEqual({ mode, status: 303 });
    const to = new URL(response.headers.get('location') ?? '');
    expect({ mode, error: to.searchParams.get('error'), state: to.searchParams.get('state') }).toEqual({ mode, error: 'unsupported_response_mode', state: 'st' });
  }
});

/** Signs `user` in through our pages from an authorization URL: where the browser was sent back to. */
async function signInFrom(url: URL, options: { consent?: 'allow' | 'deny' } = {}) {
  const agent = new UserAgent();
  const { step } = await passSignInPages(agent, await agent.follow(url.href, server.issuer), server.issuer, { email: user.email, password: PASSWORD, ...options });
  if (!step.redirectedTo) throw new Error(`the sign-in did not reach the app: ${step.page?.html.slice(0, 300)}`);
  return { redirectedTo: step.redirectedTo };
}

describe('RFC 9701: introspection answered as a signed JWT', () => {
  test('an API that asks for a JWT gets one, for itself, and openid-client checks it; one that asks for JSON still gets JSON', async () => {
    const { clientId, secret } = await createWebClient(server, { firstParty: true });
    const app = await discover(server, clientId, secret);
    const flow = await authorize(app, user, { scope: 'openid email' });
    const tokens = await oidc.authorizationCodeGrant(app, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });

    const api = await createServiceClient(server);
    const signedApi = await discover(server, api.clientId, { client_secret: api.secret, introspection_signed_response_alg: 'RS256' });
    const introspected = await oidc.tokenIntrospection(signedApi, tokens.access_token);
    expect(introspected).toMatchObject({ active: true, sub: user.userId, client_id: clientId });

    const basic = `Basic ${Buffer.from(`${encodeURIComponent(api.clientId)}:${encodeURIComponent(api.secret)}`).toString('base64')}`;
    const ask = (accept: string, token = tokens.access_token) =>
      fetch(`${server.url}/token/introspection`, { method: 'POST', headers: { authorization: basic, accept }, body: new URLSearchParams({ token }) });
    const raw = await ask('application/token-introspection+jwt');
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toMatch(/^application\/token-introspection\+jwt/);
    const jwt = await raw.text();
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: 'RS256', typ: 'token-introspection+jwt' });
    const claims = await verified(jwt, api.clientId);
    expect(claims).toMatchObject({ iat: expect.any(Number), token_introspection: { active: true, sub: user.userId, client_id: clientId } });

    const inactive = await verified(await (await ask('application/token-introspection+jwt', 'no-such-token')).text(), api.clientId);
    expect(inactive.token_introspection).toEqual({ active: false });

    const json = await ask('application/json');
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await json.json()).toMatchObject({ active: true, sub: user.userId });
  });
});

describe('signed userinfo (userinfo_signed_response_alg)', () => {
  test('a client registered with signedUserinfo gets a JWT for itself from userinfo; others still get JSON', async () => {
    const { client, secret } = await server.services.clients.create({ type: 'web', name: 'Signed userinfo', redirectUris: [REDIRECT_URI], firstParty: true, signedUserinfo: true });
    expect(client.signedUserinfo).toBe(true);
    const app = await discover(server, client.clientId, { client_secret: secret, userinfo_signed_response_alg: 'RS256' });
    const flow = await authorize(app, user, { scope: 'openid email' });
    const tokens = await oidc.authorizationCodeGrant(app, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    const info = await oidc.fetchUserInfo(app, tokens.access_token, user.userId);
    expect(info).toMatchObject({ sub: user.userId, email: user.email });

    const raw = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(raw.headers.get('content-type')).toMatch(/^application\/jwt/);
    expect(await verified(await raw.text(), client.clientId)).toMatchObject({ sub: user.userId, email: user.email });

    // The same app with the policy lifted by the admin API: plain JSON again, from the next request on.
    const admin = await adminApiOf(server);
    const lifted = await admin.call('PATCH', `/clients/${client.clientId}`, { signedUserinfo: false });
    expect(lifted).toMatchObject({ status: 200, body: { signedUserinfo: false } });
    const plain = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(plain.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await plain.json()).toMatchObject({ sub: user.userId, email: user.email });
  });

  test('not for a service client; the CLI sets and lifts it (self-registration: client-registration.test.ts)', async () => {
    await expect(server.services.clients.create({ type: 'service', name: 'Job', signedUserinfo: true })).rejects.toThrow(/signedUserinfo: a service client signs no users in, so it has no userinfo to sign/);
    const service = await createServiceClient(server);
    await expect(server.services.clients.update(service.clientId, { signedUserinfo: true })).rejects.toThrow(/signedUserinfo: a service client signs no users in/);

    const { clientId } = await createWebClient(server);
    const env = cleanEnvironment(server.env);
    const cli = (...args: string[]) => runToEnd('src/cli.ts', ['clients', 'update', clientId, ...args, '--json'], env);
    const signed = await cli('--signed-userinfo');
    expect(JSON.parse(signed.stdout)).toMatchObject({ signed_userinfo: true });
    expect(JSON.parse((await cli('--no-signed-userinfo')).stdout)).toMatchObject({ signed_userinfo: false });
  });
});
