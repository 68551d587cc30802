/**
 * Discovery advertises exactly what the server does, and a relying party configures itself from it alone.
 */
import * as oidc from 'openid-client';
import { discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

async function metadata(path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${server.issuer}${path}`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/application\/(jwk-set\+)?json/);
  return (await response.json()) as Record<string, unknown>;
}

describe('discovery', () => {
  test('OpenID configuration lists only what is enabled', async () => {
    const doc = await metadata('/.well-known/openid-configuration');
    expect(doc.issuer).toBe(server.issuer);
    expect(doc.response_types_supported).toEqual(['code']);
    expect(doc.code_challenge_methods_supported).toEqual(['S256']);
    expect(new Set(doc.grant_types_supported as string[])).toEqual(
      new Set(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code']),
    );
    expect(new Set(doc.token_endpoint_auth_methods_supported as string[])).toEqual(
      new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']),
    );
    expect(doc.token_endpoint_auth_methods_supported).not.toContain('client_secret_jwt');
    const algorithms = [
      ...(doc.id_token_signing_alg_values_supported as string[]),
      ...(doc.token_endpoint_auth_signing_alg_values_supported as string[]),
    ];
    expect(algorithms.filter((alg) => alg.startsWith('HS'))).toEqual([]);
    expect(doc.id_token_signing_alg_values_supported).toEqual(['RS256']);
    for (const endpoint of [
      'authorization_endpoint',
      'token_endpoint',
      'jwks_uri',
      'userinfo_endpoint',
      'introspection_endpoint',
      'revocation_endpoint',
      'end_session_endpoint',
      'device_authorization_endpoint',
    ]) {
      expect(String(doc[endpoint])).toMatch(new RegExp(`^${server.issuer}/`));
    }
    expect(doc.scopes_supported).toEqual(expect.arrayContaining(['openid', 'offline_access', 'profile', 'email', 'roles']));
    expect(doc.claims_supported).toEqual(expect.arrayContaining(['sub', 'email', 'roles']));
    // OpenID Connect Back-Channel Logout 1.0 §2.1, with `sid` in logout tokens (test/e2e/backchannel-logout.test.ts).
    expect(doc).toMatchObject({ backchannel_logout_supported: true, backchannel_logout_session_supported: true });
  });

  test('OAuth authorization server metadata (RFC 8414) agrees with it', async () => {
    const openid = await metadata('/.well-known/openid-configuration');
    const oauth = await metadata('/.well-known/oauth-authorization-server');
    for (const key of ['issuer', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'grant_types_supported']) {
      expect(oauth[key]).toEqual(openid[key]);
    }
  });

  test('JWKS publishes RS256 public keys only', async () => {
    const jwks = (await metadata('/jwks')) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
      expect(key.kid).toEqual(expect.any(String));
      for (const privatePart of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key).not.toHaveProperty(privatePart);
    }
  });

  test('openid-client configures itself from discovery alone', async () => {
    const config = await discover(server, 'any-client');
    const served = config.serverMetadata();
    expect(served.issuer).toBe(server.issuer);
    expect(served.supportsPKCE()).toBe(true);
    expect(oidc.buildAuthorizationUrl(config, { redirect_uri: 'https://app.example.test/cb', scope: 'openid' }).origin).toBe(
      server.issuer,
    );
  });

  test('repeated requests are answered alike (from the document cache), with CORS for each origin', async () => {
    for (const path of ['/.well-known/openid-configuration', '/jwks']) {
      const first = await fetch(`${server.issuer}${path}`, { headers: { origin: 'https://one.example.test' } });
      const second = await fetch(`${server.issuer}${path}`, { headers: { origin: 'https://two.example.test' } });
      expect(await second.text()).toBe(await first.text());
      expect(second.headers.get('content-type')).toBe(first.headers.get('content-type'));
      expect(second.headers.get('cache-control')).toBe(first.headers.get('cache-control'));
      expect(first.headers.get('access-control-allow-origin')).toBe('https://one.example.test');
      expect(second.headers.get('access-control-allow-origin')).toBe('https://two.example.test');
      expect(second.headers.get('vary')).toMatch(/Origin/);
      expect(second.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(second.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  test('an unchanged document is answered 304 to If-None-Match with its ETag', async () => {
    for (const path of ['/.well-known/openid-configuration', '/jwks']) {
      const first = await fetch(`${server.issuer}${path}`);
      const etag = first.headers.get('etag');
      expect(etag).toMatch(/^"[\w-]+"$/);
      // fetch() sends `Cache-Control: no-cache` with any conditional request; the server still validates (RFC 9111 §5.2.1.4).
      const again = await fetch(`${server.issuer}${path}`, { headers: { 'if-none-match': etag as string } });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe('');
      expect(again.headers.get('etag')).toBe(etag);
      const stale = await fetch(`${server.issuer}${path}`, { headers: { 'if-none-match': '"something-else"' } });
      expect(stale.status).toBe(200);
      expect(await stale.text()).toBe(await first.text());
      // RFC 9110 §13.1.2: a list of tags, a weak tag (as a cache or CDN may have turned ours into) and `*` match too.
      for (const header of [`"an-older-one", ${etag}`, `W/${etag}`, '*']) {
        const listed = await fetch(`${server.issuer}${path}`, { headers: { 'if-none-match': header } });
        expect({ header, status: listed.status }).toEqual({ header, status: 304 });
      }
    }
  });
});
