/**
 * The claims request parameter (OpenID Connect Core §5.5), driven by openid-client: an app asks for single claims
 * in the ID token or at userinfo; a third-party app's person is asked on the consent page; an attribute of a scope
 * of its own goes only to apps registered for that scope; an `acr` asked for there asks for two steps.
 */
import * as oidc from 'openid-client';
import { MFA_ACR } from '../../src/accounts/two-factor.js';
import { type Fixtures, PASSWORD, REDIRECT_URI, codeFlowRequest, createSpaClient, createUser, createWebClient, discover, loginFormOf } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type Page, UserAgent, signIn } from '../support/user-agent.js';

let server: TestServer;
let user: Fixtures;
let spa: oidc.Configuration;

beforeAll(async () => {
  server = await startTestServer({ env: { USER_CLAIMS: 'tenant_id,hr:employee_id' } });
  user = await createUser(server);
  await server.services.users.update(user.userId, { attributes: { tenant_id: 'acme', employee_id: 'E-7' } });
  spa = await discover(server, (await createSpaClient(server)).clientId, undefined, oidc.None());
});
afterAll(() => server.close());

/** Signs the user in for an authorization request with these parameters and redeems the code. */
async function signInWith(config: oidc.Configuration, parameters: Record<string, string>, agent = new UserAgent()) {
  const request = await codeFlowRequest(config, parameters);
  const result = await signIn(agent, request.url.href, { email: user.email, password: PASSWORD });
  const tokens = await oidc.authorizationCodeGrant(config, result.redirectedTo, {
    pkceCodeVerifier: request.codeVerifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
  });
  return { ...result, tokens };
}

test('discovery says the claims parameter is supported', async () => {
  const discovered = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  expect(discovered.claims_parameter_supported).toBe(true);
});

test('an app gets the single claims it asks for, where it asks for them, without their scopes', async () => {
  const claims = JSON.stringify({ id_token: { email: { essential: true }, tenant_id: null }, userinfo: { name: null } });
  const { tokens } = await signInWith(spa, { scope: 'openid', claims });
  const idToken = tokens.claims();
  expect(idToken).toMatchObject({ sub: user.userId, email: user.email, tenant_id: 'acme' });
  expect(idToken?.name).toBeUndefined();
  const userinfo = await oidc.fetchUserInfo(spa, tokens.access_token, user.userId);
  expect(userinfo).toMatchObject({ sub: user.userId, name: expect.any(String) });
  expect(userinfo.email).toBeUndefined();
});

test('a third-party app’s person is asked for the claims as for their scopes, once a session', async () => {
  const { clientId, secret } = await createWebClient(server);
  const web = await discover(server, clientId, secret);
  const claims = JSON.stringify({ id_token: { email: null, roles: null } });
  const browser = new UserAgent();
  const first = await signInWith(web, { scope: 'openid', claims }, browser);
  expect(first.sawConsentPage).toBe(true);
  expect(first.consentPage?.html).toContain('<li>See your email address</li>');
  expect(first.consentPage?.html).toContain('<li>See the roles you hold</li>');
  expect(first.tokens.claims()).toMatchObject({ email: user.email, roles: ['reader'] });
  const again = await signInWith(web, { scope: 'openid', claims }, browser);
  expect(again.sawConsentPage).toBe(false);
  expect(again.tokens.claims()).toMatchObject({ email: user.email });
});

test('an attribute of a scope of its own goes only to apps registered for that scope; a malformed request is refused', async () => {
  const refusal = async (parameters: Record<string, string>) => {
    const { url } = await codeFlowRequest(spa, parameters);
    const location = new URL((await fetch(url, { redirect: 'manual' })).headers.get('location') ?? '');
    return { error: location.searchParams.get('error'), description: location.searchParams.get('error_description') };
  };
  expect(await refusal({ scope: 'openid', claims: JSON.stringify({ id_token: { employee_id: null } }) })).toEqual({
    error: 'invalid_request',
    description: 'claims.id_token.employee_id is released only to apps registered for the hr scope',
  });
  expect(await refusal({ scope: 'openid', claims: '{not json' })).toMatchObject({ error: 'invalid_request', description: 'could not parse the claims parameter JSON' });
  expect(await refusal({ scope: 'openid', claims: JSON.stringify({ id_token: { email: true } }) })).toMatchObject({
    error: 'invalid_request',
    description: 'claims.id_token.email must be null or an object',
  });

  const { client } = await server.services.clients.create({ type: 'spa', name: 'HR', redirectUris: [REDIRECT_URI], scope: 'openid profile hr', firstParty: true });
  const hr = await discover(server, client.clientId, undefined, oidc.None());
  const { tokens } = await signInWith(hr, { scope: 'openid', claims: JSON.stringify({ id_token: { employee_id: null } }) });
  expect(tokens.claims()?.employee_id).toBe('E-7');
});

test('an acr asked for in the claims parameter asks for two steps, as acr_values does', async () => {
  const request = await codeFlowRequest(spa, { scope: 'openid', claims: JSON.stringify({ id_token: { acr: { essential: true, value: MFA_ACR } } }) });
  const agent = new UserAgent();
  const { page } = await agent.follow(request.url.href, server.issuer);
  const next = await agent.submit(page as Page, loginFormOf(page as Page), { email: user.email, password: PASSWORD }, server.issuer);
  // The account has no authenticator app: asked for two steps, it is sent to set one up.
  expect(next.page?.html).toContain('<h1>Set up two-step verification</h1>');
});
