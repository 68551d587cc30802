/**
 * Signed authorization requests (RFC 9101, JAR): an app with keys of its own sends its authorization request as a
 * JWT signed with one (openid-client's buildAuthorizationUrlWithJAR), by value or pushed (PAR); one registered with
 * requireSignedRequestObject may send nothing else. Forged, unsigned and mismatched ones are OAuth errors.
 */
import { type CryptoKey, SignJWT, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { type Fixtures, PASSWORD, REDIRECT_URI, createUser, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { UserAgent, signIn } from '../support/user-agent.js';

let server: TestServer;
let user: Fixtures;
let privateKey: CryptoKey;
let publicJwk: Record<string, unknown>;

beforeAll(async () => {
  server = await startTestServer();
  user = await createUser(server);
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'app-1', alg: 'ES256', use: 'sig' };
});
afterAll(() => server.close());

/** A web app authenticating with private_key_jwt, its key also signing its requests. */
async function keyedApp(options: { requireSignedRequestObject?: boolean } = {}) {
  const { client } = await server.services.clients.create({
    type: 'web',
    name: 'Signed requests',
    redirectUris: [REDIRECT_URI],
    tokenEndpointAuthMethod: 'private_key_jwt',
    jwks: { keys: [publicJwk] },
    firstParty: true,
    ...options,
  });
  return { clientId: client.clientId, config: await discover(server, client.clientId, undefined, oidc.PrivateKeyJwt(privateKey)) };
}

/** The parameters of a code request with PKCE, and what redeeming it needs. */
async function codeRequest() {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const parameters = {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email',
    state,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  };
  return { parameters, codeVerifier, state };
}

/** Where the server sends the browser for `url`, without signing in: the error it answers the app with. */
async function refusalOf(url: URL | string) {
  const response = await fetch(url, { redirect: 'manual' });
  const location = response.headers.get('location');
  if (location) {
    const to = new URL(location, server.url);
    return { status: response.status, path: to.pathname, error: to.searchParams.get('error'), description: to.searchParams.get('error_description') };
  }
  return { status: response.status, error: null, description: await response.text() };
}

test('discovery offers request objects, signed with the algorithms a client key can use', async () => {
  const discovered = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  expect(discovered).toMatchObject({ request_parameter_supported: true, request_uri_parameter_supported: false });
  expect(discovered.request_object_signing_alg_values_supported).toEqual(['RS256', 'PS256', 'ES256', 'EdDSA']);
});

test('an app signs its authorization request with its key, by value or pushed, and signs the person in', async () => {
  const { config } = await keyedApp();
  for (const send of ['by value', 'pushed'] as const) {
    const { parameters, codeVerifier, state } = await codeRequest();
    const url = send === 'by value' ? await oidc.buildAuthorizationUrlWithJAR(config, parameters, privateKey) : await oidc.buildAuthorizationUrlWithPAR(config, await jarParameters(config, parameters));
    if (send === 'by value') expect(url.searchParams.get('request')?.split('.')).toHaveLength(3);
    const { redirectedTo } = await signIn(new UserAgent(), url.href, { email: user.email, password: PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(config, redirectedTo, { pkceCodeVerifier: codeVerifier, expectedState: state });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, email: user.email });
  }
});

/** The request object as the only parameter (with client_id), as openid-client's JAR helper makes it. */
async function jarParameters(config: oidc.Configuration, parameters: Record<string, string>) {
  const url = await oidc.buildAuthorizationUrlWithJAR(config, parameters, privateKey);
  return Object.fromEntries(url.searchParams);
}

test('an app registered with requireSignedRequestObject may send nothing else; forged or unsigned ones are refused', async () => {
  const { clientId, config } = await keyedApp({ requireSignedRequestObject: true });
  const { parameters } = await codeRequest();

  const plain = await refusalOf(oidc.buildAuthorizationUrl(config, parameters));
  expect(plain).toMatchObject({ error: 'invalid_request', description: 'Request Object must be used by this client' });

  const signed = await refusalOf(await oidc.buildAuthorizationUrlWithJAR(config, parameters, privateKey));
  expect(signed).toMatchObject({ status: 303, path: expect.stringMatching(/^\/interaction\//), error: null }); // on to the login page

  const base = `${server.url}/auth?client_id=${encodeURIComponent(clientId)}&response_type=code`;
  const claims = { ...parameters, client_id: clientId, response_type: 'code', iss: clientId, aud: server.issuer };
  const other = await generateKeyPair('ES256');
  const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'app-1' }).setIssuedAt().setExpirationTime('5m').sign(other.privateKey);
  expect(await refusalOf(`${base}&request=${forged}`)).toMatchObject({ error: 'invalid_request_object', description: 'could not validate Request Object' });

  const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
  expect(await refusalOf(`${base}&request=${unsigned}`)).toMatchObject({ error: 'invalid_request_object', description: 'unsupported signed request alg' });

  const elsewhere = await new SignJWT({ ...claims, aud: 'https://another-issuer.example.test' }).setProtectedHeader({ alg: 'ES256', kid: 'app-1' }).setIssuedAt().setExpirationTime('5m').sign(privateKey);
  expect(await refusalOf(`${base}&request=${elsewhere}`)).toMatchObject({ error: 'invalid_request_object', description: 'Request Object claims are invalid' });

  expect(await refusalOf(`${base}&request=not-a-jwt`)).toMatchObject({ error: 'invalid_request_object', description: 'could not parse Request Object' });
});

test('requireSignedRequestObject needs an app that sends authorization requests and has keys; the CLI sets and lifts it', async () => {
  const { clients } = server.services;
  await expect(clients.create({ type: 'service', name: 'Job', requireSignedRequestObject: true })).rejects.toThrow(/a service client sends no authorization requests, so there is nothing to sign/);
  await expect(clients.create({ type: 'web', name: 'No keys', redirectUris: [REDIRECT_URI], requireSignedRequestObject: true })).rejects.toThrow(
    /requireSignedRequestObject: a request object is checked with the client’s public keys: give jwks or jwksUri too/,
  );
  const { client } = await clients.create({ type: 'web', name: 'Plain', redirectUris: [REDIRECT_URI] });
  await expect(clients.update(client.clientId, { requireSignedRequestObject: true })).rejects.toThrow(/give jwks or jwksUri too/);

  const { clientId } = await keyedApp();
  const env = cleanEnvironment(server.env);
  const authz = (args: string[]) => runToEnd('src/cli.ts', args, env);
  const on = await authz(['clients', 'update', clientId, '--require-signed-request', '--json']);
  expect(JSON.parse(on.stdout)).toMatchObject({ require_signed_request_object: true });
  const off = await authz(['clients', 'update', clientId, '--no-require-signed-request', '--json']);
  expect(JSON.parse(off.stdout)).toMatchObject({ require_signed_request_object: false });
});
