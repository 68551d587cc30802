/**
 * DPoP nonces (RFC 9449 §8 at the token endpoint, §9 at userinfo), over HTTP against PostgreSQL and Redis. Every
 * server offers a nonce in `DPoP-Nonce` and takes it in the next proof, at any instance (the key is the
 * database's); a nonce it did not make is `use_dpop_nonce` with a fresh one. With DPOP_NONCE_REQUIRED a proof
 * without a nonce is refused the same way, and openid-client, as a real app, retries with the nonce and gets its
 * tokens and its userinfo. A single-page app can read the header across origins.
 */
import { randomUUID } from 'node:crypto';
import { type JWTPayload, SignJWT, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { type Fixtures, REDIRECT_URI, authorize, createServiceClient, createSpaClient, createUser, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let offering: TestServer;
let requiring: TestServer;
let service: { clientId: string; secret: string };
let keys: Awaited<ReturnType<typeof generateKeyPair>>;

beforeAll(async () => {
  offering = await startTestServer();
  // Another instance on the same database and Redis, requiring nonces.
  requiring = await startTestServer({ instanceOf: offering, env: { DPOP_NONCE_REQUIRED: 'true' } });
  service = await createServiceClient(offering);
  keys = await generateKeyPair('ES256');
});
afterAll(async () => {
  await requiring?.close();
  await offering?.close();
});

/** A DPoP proof for a POST to `target`'s token endpoint (at the address it is reached on), with `nonce` when given. */
async function tokenProof(target: TestServer, nonce?: string): Promise<string> {
  const payload: JWTPayload = { jti: randomUUID(), htm: 'POST', htu: `${target.url}/token`, ...(nonce && { nonce }) };
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey) }).setIssuedAt().sign(keys.privateKey);
}

/** The service's client-credentials request to `target`, as raw HTTP, with `proof`. */
function clientCredentials(target: TestServer, proof: string): Promise<Response> {
  return fetch(`${target.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${service.clientId}:${service.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      dpop: proof,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
}

test('a nonce is offered with every DPoP answer and taken at any instance; one the server did not make is use_dpop_nonce with a fresh one', async () => {
  const first = await clientCredentials(offering, await tokenProof(offering));
  expect(first.status).toBe(200);
  expect((await first.json()) as Record<string, unknown>).toMatchObject({ token_type: 'DPoP' });
  const nonce = first.headers.get('dpop-nonce');
  expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);

  // The other instance takes it: the key is the database's, not the process's.
  const elsewhere = await clientCredentials(requiring, await tokenProof(requiring, nonce ?? ''));
  expect(elsewhere.status).toBe(200);

  for (const target of [offering, requiring]) {
    const forged = await clientCredentials(target, await tokenProof(target, 'A'.repeat(43)));
    expect(forged.status).toBe(400);
    expect(await forged.json()).toEqual({ error: 'use_dpop_nonce', error_description: 'invalid nonce in DPoP proof' });
    expect(forged.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  }
});

test('with DPOP_NONCE_REQUIRED a proof without a nonce is use_dpop_nonce; the one without the setting still takes it', async () => {
  const refused = await clientCredentials(requiring, await tokenProof(requiring));
  expect(refused.status).toBe(400);
  expect(await refused.json()).toEqual({ error: 'use_dpop_nonce', error_description: 'nonce is required in the DPoP proof' });
  const nonce = refused.headers.get('dpop-nonce') ?? '';
  expect(nonce).not.toBe('');
  expect((await clientCredentials(requiring, await tokenProof(requiring, nonce))).status).toBe(200);
  expect((await clientCredentials(offering, await tokenProof(offering))).status).toBe(200);
});

test('openid-client retries with the nonce: a single-page app signs in, redeems its code, refreshes and reads userinfo on the instance that requires nonces', async () => {
  const user: Fixtures = await createUser(requiring);
  const { clientId } = await createSpaClient(requiring);
  const app = await discover(requiring, clientId);
  // What came back to openid-client, to see that it was asked for the nonce and retried.
  const answers: string[] = [];
  const forward = app[oidc.customFetch] ?? fetch;
  app[oidc.customFetch] = async (url, options) => {
    const response = await forward(url, options);
    answers.push(`${new URL(url).pathname} ${response.status}${response.headers.get('dpop-nonce') ? ' nonce' : ''}`);
    return response;
  };
  const DPoP = oidc.getDPoPHandle(app, await oidc.randomDPoPKeyPair());
  const flow = await authorize(app, user, { scope: 'openid email offline_access', prompt: 'consent' });
  const tokens = await oidc.authorizationCodeGrant(app, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce }, undefined, { DPoP });
  expect(tokens.token_type).toBe('dpop');
  expect(await oidc.fetchUserInfo(app, tokens.access_token, user.userId, { DPoP })).toMatchObject({ sub: user.userId, email: user.email });
  const refreshed = await oidc.refreshTokenGrant(app, tokens.refresh_token ?? '', undefined, { DPoP });
  expect(refreshed.token_type).toBe('dpop');
  // Refused once for want of a nonce, then served: the nonce, cached by openid-client, served the rest.
  expect(answers).toEqual(['/token 400 nonce', '/token 200', '/me 200', '/token 200']);

  // Userinfo is a resource server too (§9): a proof without a nonce gets 401 with the nonce, as RFC 9449 says.
  const proof = await new SignJWT({ jti: randomUUID(), htm: 'GET', htu: `${requiring.url}/me`, ath: await accessTokenHash(refreshed.access_token) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey) })
    .setIssuedAt()
    .sign(keys.privateKey);
  const unbound = await fetch(`${requiring.url}/me`, { headers: { authorization: `DPoP ${refreshed.access_token}`, dpop: proof } });
  expect(unbound.status).toBe(401);
  expect(unbound.headers.get('www-authenticate')).toMatch(/^DPoP .*error="use_dpop_nonce"/);
  expect(unbound.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
});

test('a single-page app on another origin may read DPoP-Nonce (CORS exposes it)', async () => {
  const { clientId } = await createSpaClient(offering);
  const origin = new URL(REDIRECT_URI).origin;
  const proof = await tokenProof(offering);
  const answer = await fetch(`${offering.url}/token`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'unknown', client_id: clientId }),
  });
  expect(answer.status).toBe(400);
  expect(answer.headers.get('access-control-allow-origin')).toBe(origin);
  expect(answer.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('dpop-nonce');
});

async function accessTokenHash(token: string): Promise<string> {
  return Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))).toString('base64url');
}
