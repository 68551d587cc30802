/**
 * Token management: introspection (RFC 7662), revocation (RFC 7009), userinfo, roles, and RP-initiated logout
 * with a registered post_logout_redirect_uri.
 */
import * as oidc from 'openid-client';
import {
  type Fixtures,
  POST_LOGOUT_REDIRECT_URI,
  createServiceClient,
  createUser,
  createWebClient,
  discover,
  signInAndRedeem,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { parseForms } from '../support/user-agent.js';

let server: TestServer;
let user: Fixtures;
let config: oidc.Configuration;
beforeAll(async () => {
  server = await startTestServer();
  user = await createUser(server, ['admin']);
  const { clientId, secret } = await createWebClient(server, { firstParty: true });
  config = await discover(server, clientId, secret);
});
afterAll(() => server.close());

describe('token management', () => {
  test('introspection reports an active opaque access token and its claims', async () => {
    const { tokens } = await signInAndRedeem(config, user, { scope: 'openid roles' });
    const result = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(result).toMatchObject({ active: true, sub: user.userId, token_type: 'Bearer', iss: server.issuer });
    expect(result.scope?.split(' ')).toEqual(expect.arrayContaining(['openid', 'roles']));
  });

  test('introspection of a garbage token says inactive', async () => {
    expect(await oidc.tokenIntrospection(config, 'not-a-token')).toEqual({ active: false });
  });

  test('another service may not introspect tokens without authenticating', async () => {
    const { tokens } = await signInAndRedeem(config, user);
    const response = await fetch(`${server.issuer}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'invalid_client' });
  });

  test('a revoked access token is inactive and refused at userinfo', async () => {
    const { tokens } = await signInAndRedeem(config, user);
    await oidc.tokenRevocation(config, tokens.access_token);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    await expect(oidc.fetchUserInfo(config, tokens.access_token, user.userId)).rejects.toBeDefined();
  });

  test('revoking a refresh token ends it', async () => {
    const { tokens } = await signInAndRedeem(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    const refreshToken = tokens.refresh_token as string;
    await oidc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
    await expect(oidc.refreshTokenGrant(config, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a client cannot revoke another client’s token', async () => {
    const { tokens } = await signInAndRedeem(config, user);
    const other = await createServiceClient(server);
    const otherConfig = await discover(server, other.clientId, other.secret);
    await expect(oidc.tokenRevocation(otherConfig, tokens.access_token)).rejects.toBeDefined();
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(true);
  });

  test('roles are released under the roles scope only', async () => {
    const withRoles = await signInAndRedeem(config, user, { scope: 'openid roles' });
    expect((await oidc.fetchUserInfo(config, withRoles.tokens.access_token, user.userId)).roles).toEqual(['admin']);
    const without = await signInAndRedeem(config, user, { scope: 'openid email' });
    expect(without.tokens.claims()?.roles).toBeUndefined();
    expect((await oidc.fetchUserInfo(config, without.tokens.access_token, user.userId)).roles).toBeUndefined();
  });

  test('RP-initiated logout ends the session and returns to the registered URI', async () => {
    const { tokens, agent, state } = await signInAndRedeem(config, user);
    const logoutUrl = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token as string,
      post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
      state,
    });
    const step = await agent.follow(logoutUrl.href, server.issuer);
    const page = step.page!;
    expect(page.status).toBe(200);
    const form = parseForms(page.html).find((candidate) => candidate.fields.some((field) => field.name === 'xsrf'));
    expect(form).toBeDefined();
    const done = await agent.submit(page, form!, { logout: 'yes' }, server.issuer);
    expect(done.redirectedTo?.href).toBe(`${POST_LOGOUT_REDIRECT_URI}?state=${state}`);

    // The session is gone: a new authorization request asks for the password again.
    const again = await signInAndRedeem(config, user, { agent });
    expect(again.sawLoginPage).toBe(true);
  });

  test('logout refuses a post_logout_redirect_uri that is not registered', async () => {
    const { tokens } = await signInAndRedeem(config, user);
    const logoutUrl = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token as string,
      post_logout_redirect_uri: 'https://evil.example.test/',
    });
    const response = await fetch(logoutUrl, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });
});
