/**
 * A single-page or mobile app (public client): PKCE S256 is mandatory, refresh tokens rotate on every use, and
 * presenting a rotated refresh token again revokes the whole grant.
 */
import * as oidc from 'openid-client';
import { type Fixtures, authorize, createSpaClient, createUser, discover, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
let user: Fixtures;
let config: oidc.Configuration;
beforeAll(async () => {
  server = await startTestServer();
  user = await createUser(server);
  const { clientId } = await createSpaClient(server);
  config = await discover(server, clientId, undefined, oidc.None());
});
afterAll(() => server.close());

const offline = { scope: 'openid offline_access', prompt: 'consent' };

describe('SPA (public client)', () => {
  test('code + PKCE gives tokens without any client secret', async () => {
    const { tokens } = await signInAndRedeem(config, user, offline);
    expect(tokens.claims()?.sub).toBe(user.userId);
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });

  test('an authorization request without PKCE is refused', async () => {
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: 'https://app.example.test/callback',
      scope: 'openid',
      state: 's',
    });
    const response = await fetch(url, { redirect: 'manual' });
    const location = new URL(response.headers.get('location') ?? '');
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  test('a wrong code_verifier is refused', async () => {
    const flow = await authorize(config, user);
    await expect(
      oidc.authorizationCodeGrant(config, flow.callbackUrl, {
        pkceCodeVerifier: oidc.randomPKCECodeVerifier(),
        expectedState: flow.state,
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('refresh tokens rotate; replaying a rotated one revokes the grant', async () => {
    const { tokens } = await signInAndRedeem(config, user, offline);
    const first = tokens.refresh_token as string;
    const second = await oidc.refreshTokenGrant(config, first);
    expect(second.refresh_token).toEqual(expect.any(String));
    expect(second.refresh_token).not.toBe(first);
    const third = await oidc.refreshTokenGrant(config, second.refresh_token as string);
    expect(third.refresh_token).not.toBe(second.refresh_token);

    await expect(oidc.refreshTokenGrant(config, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The reuse killed the grant: the newest refresh token and access token are dead too.
    await expect(oidc.refreshTokenGrant(config, third.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(config, third.access_token, user.userId)).rejects.toBeDefined();
  });
});
