/**
 * Twenty clients racing to redeem one authorization code, or one refresh token: exactly one wins, the rest get
 * a clean invalid_grant (the adapters' atomic consume), and nothing answers 5xx.
 */
import * as oidc from 'openid-client';
import { type Fixtures, authorize, createUser, createWebClient, discover, REDIRECT_URI } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
let user: Fixtures;
let config: oidc.Configuration;
let clientId: string;
let secret: string;
beforeAll(async () => {
  // No grace window for re-presented refresh tokens: exactly one of the racers may win (see security.test.ts).
  server = await startTestServer({ env: { REFRESH_REUSE_GRACE: '0' } });
  user = await createUser(server);
  ({ clientId, secret } = await createWebClient(server, { firstParty: true }));
  config = await discover(server, clientId, secret);
});
afterAll(() => server.close());

const RACERS = 20;

function tokenRequest(body: Record<string, string>) {
  return fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams(body),
  });
}

async function race(body: Record<string, string>) {
  const responses = await Promise.all(Array.from({ length: RACERS }, () => tokenRequest(body)));
  const bodies = (await Promise.all(responses.map((response) => response.json()))) as { error?: string }[];
  return { statuses: responses.map((response) => response.status), bodies };
}

describe('concurrent redemption', () => {
  test('one authorization code, twenty redemptions: exactly one succeeds', async () => {
    const flow = await authorize(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    const code = flow.callbackUrl.searchParams.get('code') as string;
    const { statuses, bodies } = await race({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: flow.codeVerifier,
    });
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 400)).toHaveLength(RACERS - 1);
    expect(bodies.filter((body) => body.error === 'invalid_grant')).toHaveLength(RACERS - 1);
  });

  test('one refresh token, twenty redemptions: exactly one succeeds', async () => {
    const flow = await authorize(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    const tokens = await oidc.authorizationCodeGrant(config, flow.callbackUrl, {
      pkceCodeVerifier: flow.codeVerifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    });
    const { statuses, bodies } = await race({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string });
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(bodies.filter((body) => body.error === 'invalid_grant')).toHaveLength(RACERS - 1);
    expect(statuses.some((status) => status >= 500)).toBe(false);
  });
});
