/**
 * Token lifetimes: the lifetimes set in the environment (README, Configuration) are the ones users get. A server
 * runs with a distinct value for each, and real flows (a user signing in, a service asking for an API token,
 * refresh) show them in the token endpoint's `expires_in`, the tokens' own `exp`, introspection, the session
 * cookie and the stored records. A second server with a tiny ACCESS_TOKEN_TTL shows an expired token refused.
 */
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { SQL_MODELS } from '../../src/store/adapters.js';
import { CLOCK_TOLERANCE_SECONDS } from '../../src/store/sql-adapter.js';
import { storageId } from '../../src/store/storage-id.js';
import {
  API,
  type Fixtures,
  REDIRECT_URI,
  createServiceClient,
  createSpaClient,
  createUser,
  createWebClient,
  discover,
  signInAndRedeem,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

/** Each lifetime different, so a token that got the wrong one shows it. GRANT_TTL is below REFRESH_TOKEN_TTL on purpose. */
const TTL = {
  ACCESS_TOKEN_TTL: 1234,
  ID_TOKEN_TTL: 2345,
  API_ACCESS_TOKEN_TTL: 3456,
  REFRESH_TOKEN_TTL: 45678,
  GRANT_TTL: 40000,
  SESSION_TTL: 56789,
};
/** An API registered with a lifetime of its own (`apis add --token-ttl 900`). */
const REPORTS_API = 'https://reports.example.test';
const REPORTS_TTL = 900;
/** Seconds of slack between the server's clock reading and ours, and requests in between. */
const SLACK = 3;

const epochNow = () => Date.now() / 1000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `actual` is `expected` seconds, give or take SLACK. */
function expectSeconds(actual: number | undefined, expected: number): void {
  expect(actual).toBeGreaterThanOrEqual(expected - SLACK);
  expect(actual).toBeLessThanOrEqual(expected + SLACK);
}

/** A JWT's lifetime as it states it. */
function jwtLifetime(token: string): number {
  const { exp, iat } = decodeJwt(token);
  if (exp === undefined || iat === undefined) throw new Error('the token carries no exp or iat');
  return exp - iat;
}

/**
 * When the store lets a record go, in epoch seconds: a Redis key's TTL less the clock tolerance the adapter adds
 * (src/store/redis-adapter.ts), or the SQL row's expires_at.
 */
async function storedExpiry(server: TestServer, model: string, id: string): Promise<number> {
  const { redis, db } = server.services;
  const key = storageId(id);
  if (redis && server.config.redis && !SQL_MODELS.has(model)) {
    const ttlMs = await redis.pttl(`${server.config.redis.keyPrefix}${model}:record:${key}`);
    expect(ttlMs).toBeGreaterThan(0);
    return (Date.now() + ttlMs) / 1000 - CLOCK_TOLERANCE_SECONDS;
  }
  const row: { expires_at: Date } | undefined = await db('oidc_models').where({ model, id: key }).first('expires_at');
  if (!row) throw new Error(`no stored ${model}`);
  return row.expires_at.getTime() / 1000;
}

/** The expiry the server gives the session cookie in this response, in epoch seconds. */
function sessionCookieExpiry(response: Response): number {
  const cookie = response.headers.getSetCookie().find((line) => line.startsWith('_session='));
  const expires = cookie && /;\s*expires=([^;]+)/i.exec(cookie)?.[1];
  if (!expires) throw new Error(`no session cookie with an expiry in ${JSON.stringify(response.headers.getSetCookie())}`);
  return Date.parse(expires) / 1000;
}

const offline = { scope: 'openid offline_access', prompt: 'consent' };

describe('configured token lifetimes', () => {
  let server: TestServer;
  let user: Fixtures;
  /** A first-party web app (confidential client). */
  let webApp: oidc.Configuration;
  /** A resource server's client, which may introspect any token. */
  let resourceServer: oidc.Configuration;

  beforeAll(async () => {
    const env = Object.fromEntries(Object.entries(TTL).map(([name, seconds]) => [name, String(seconds)]));
    // API changes made in the database (as the CLI makes them) are seen at the next request.
    server = await startTestServer({ env: { ...env, CLIENT_CACHE_TTL_MS: '0' } });
    user = await createUser(server);
    await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read'], isDefault: true });
    await server.services.apis.create({ indicator: REPORTS_API, name: 'Reports', scopes: ['reports:read'], accessTokenTtl: REPORTS_TTL });
    const web = await createWebClient(server, { firstParty: true });
    webApp = await discover(server, web.clientId, web.secret);
    const introspector = await createServiceClient(server);
    resourceServer = await discover(server, introspector.clientId, introspector.secret);
  });
  afterAll(() => server.close());

  const introspect = (token: string) => oidc.tokenIntrospection(resourceServer, token);

  test('an ID token lives ID_TOKEN_TTL', async () => {
    const { tokens } = await signInAndRedeem(webApp, user);
    const claims = tokens.claims();
    expectSeconds(claims && claims.exp - claims.iat, TTL.ID_TOKEN_TTL);
  });

  test('an opaque access token lives ACCESS_TOKEN_TTL: expires_in, introspection and its stored record agree', async () => {
    const { tokens } = await signInAndRedeem(webApp, user);
    const issuedAt = epochNow();
    expectSeconds(tokens.expires_in, TTL.ACCESS_TOKEN_TTL);
    const introspection = await introspect(tokens.access_token);
    expect(introspection.active).toBe(true);
    expectSeconds(introspection.exp! - introspection.iat!, TTL.ACCESS_TOKEN_TTL);
    expectSeconds(introspection.exp!, issuedAt + TTL.ACCESS_TOKEN_TTL);
    expectSeconds(await storedExpiry(server, 'AccessToken', tokens.access_token), introspection.exp!);
  });

  test('a service’s JWT for an API registered without a lifetime lives API_ACCESS_TOKEN_TTL', async () => {
    const service = await createServiceClient(server, { scope: 'messages:read' });
    const tokens = await oidc.clientCredentialsGrant(await discover(server, service.clientId, service.secret));
    expect(decodeJwt(tokens.access_token).aud).toBe(API);
    expectSeconds(jwtLifetime(tokens.access_token), TTL.API_ACCESS_TOKEN_TTL);
    expectSeconds(tokens.expires_in, TTL.API_ACCESS_TOKEN_TTL);
  });

  test('a service’s JWT for an API registered with its own lifetime lives that one', async () => {
    const service = await createServiceClient(server, { scope: 'reports:read' });
    const tokens = await oidc.clientCredentialsGrant(await discover(server, service.clientId, service.secret), { resource: REPORTS_API });
    expect(decodeJwt(tokens.access_token).aud).toBe(REPORTS_API);
    expectSeconds(jwtLifetime(tokens.access_token), REPORTS_TTL);
    expectSeconds(tokens.expires_in, REPORTS_TTL);
  });

  test('a user’s JWT for an API lives the API’s lifetime, not ACCESS_TOKEN_TTL, also after a refresh', async () => {
    const { tokens } = await signInAndRedeem(webApp, user, { ...offline, scope: 'openid offline_access reports:read', resource: REPORTS_API });
    expect(decodeJwt(tokens.access_token).aud).toBe(REPORTS_API);
    expectSeconds(jwtLifetime(tokens.access_token), REPORTS_TTL);
    expectSeconds(tokens.expires_in, REPORTS_TTL);

    const refreshed = await oidc.refreshTokenGrant(webApp, tokens.refresh_token as string);
    expectSeconds(jwtLifetime(refreshed.access_token), REPORTS_TTL);
    expectSeconds(refreshed.expires_in, REPORTS_TTL);
  });

  test('apis update --token-ttl changes the lifetime of the tokens issued afterwards', async () => {
    const indicator = 'https://billing.example.test';
    await server.services.apis.create({ indicator, name: 'Billing', scopes: ['billing:read'] });
    const service = await createServiceClient(server, { scope: 'billing:read' });
    const config = await discover(server, service.clientId, service.secret);
    const before = await oidc.clientCredentialsGrant(config, { resource: indicator });
    expectSeconds(jwtLifetime(before.access_token), TTL.API_ACCESS_TOKEN_TTL);

    await server.services.apis.update(indicator, { accessTokenTtl: 1500 });
    const after = await oidc.clientCredentialsGrant(config, { resource: indicator });
    expectSeconds(jwtLifetime(after.access_token), 1500);
    expectSeconds(after.expires_in, 1500);
  });

  test('API_ACCESS_TOKEN_TTL is stored with an API when it is registered: changing it later leaves that API as it was', async () => {
    const restarted = await startTestServer({ instanceOf: server, env: { API_ACCESS_TOKEN_TTL: '2222' } });
    try {
      const service = await createServiceClient(restarted, { scope: 'messages:read audit:read' });
      const config = await discover(restarted, service.clientId, service.secret);
      const existing = await oidc.clientCredentialsGrant(config);
      expectSeconds(jwtLifetime(existing.access_token), TTL.API_ACCESS_TOKEN_TTL);

      const indicator = 'https://audit.example.test';
      await restarted.services.apis.create({ indicator, name: 'Audit', scopes: ['audit:read'] });
      const registeredSince = await oidc.clientCredentialsGrant(config, { resource: indicator });
      expectSeconds(jwtLifetime(registeredSince.access_token), 2222);
    } finally {
      await restarted.close();
    }
  });

  test('a refresh token lives REFRESH_TOKEN_TTL, in introspection and in its stored record', async () => {
    const { tokens } = await signInAndRedeem(webApp, user, offline);
    const issuedAt = epochNow();
    const refreshToken = tokens.refresh_token as string;
    const introspection = await introspect(refreshToken);
    expect(introspection.active).toBe(true);
    expectSeconds(introspection.exp! - introspection.iat!, TTL.REFRESH_TOKEN_TTL);
    expectSeconds(introspection.exp!, issuedAt + TTL.REFRESH_TOKEN_TTL);
    expectSeconds(await storedExpiry(server, 'RefreshToken', refreshToken), introspection.exp!);
  });

  test('a consent lives GRANT_TTL but never less than REFRESH_TOKEN_TTL, and a refresh does not extend it', async () => {
    const someone = await createUser(server);
    const { tokens } = await signInAndRedeem(webApp, someone, offline);
    const [grant] = await server.services.users.listGrants(someone.email);
    expect(TTL.GRANT_TTL).toBeLessThan(TTL.REFRESH_TOKEN_TTL);
    expectSeconds((grant!.expiresAt!.getTime() - grant!.createdAt!.getTime()) / 1000, TTL.REFRESH_TOKEN_TTL);

    await pause(1100);
    await oidc.refreshTokenGrant(webApp, tokens.refresh_token as string);
    const [afterRefresh] = await server.services.users.listGrants(someone.email);
    expect(afterRefresh!.expiresAt).toEqual(grant!.expiresAt);
  });

  test('a confidential client’s rotated refresh token gets the full REFRESH_TOKEN_TTL again', async () => {
    const { tokens } = await signInAndRedeem(webApp, user, offline);
    const first = await introspect(tokens.refresh_token as string);
    // Past the second in which the first was issued, so that a restarted lifetime ends later.
    await pause(1100);
    const refreshed = await oidc.refreshTokenGrant(webApp, tokens.refresh_token as string);
    const issuedAt = epochNow();
    const second = await introspect(refreshed.refresh_token as string);
    expect(second.active).toBe(true);
    expectSeconds(second.exp! - second.iat!, TTL.REFRESH_TOKEN_TTL);
    expectSeconds(second.exp!, issuedAt + TTL.REFRESH_TOKEN_TTL);
    expect(second.exp!).toBeGreaterThan(first.exp!);
    // The tokens issued with it have their own lifetimes, not the refresh token's.
    expectSeconds(refreshed.expires_in, TTL.ACCESS_TOKEN_TTL);
    const claims = refreshed.claims();
    expectSeconds(claims && claims.exp - claims.iat, TTL.ID_TOKEN_TTL);
  });

  test('an SPA’s rotated refresh token keeps the expiry of the first one (SECURITY.md, RFC 9700 §4.14.2)', async () => {
    const spa = await createSpaClient(server);
    const config = await discover(server, spa.clientId, undefined, oidc.None());
    const { tokens } = await signInAndRedeem(config, user, offline);
    const first = await introspect(tokens.refresh_token as string);
    expectSeconds(first.exp! - first.iat!, TTL.REFRESH_TOKEN_TTL);
    await pause(1100);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token as string);
    const second = await introspect(refreshed.refresh_token as string);
    expect(second.active).toBe(true);
    expectSeconds(second.exp!, first.exp!);
    expect(second.exp! - second.iat!).toBeLessThan(TTL.REFRESH_TOKEN_TTL);
    expectSeconds(await storedExpiry(server, 'RefreshToken', refreshed.refresh_token as string), first.exp!);
  });

  test('a remembered login session lives SESSION_TTL, and each authorization request in it starts that again (sliding)', async () => {
    const someone = await createUser(server);
    const { agent } = await signInAndRedeem(webApp, someone, { remember: true });
    const signedInAt = epochNow();
    const [session] = await server.services.sessions.list(someone.userId);
    const sessionId = agent.cookies.get('_session');
    expect(sessionId).toEqual(expect.any(String));
    expectSeconds(session!.expiresAt!.getTime() / 1000, signedInAt + TTL.SESSION_TTL);
    expectSeconds(await storedExpiry(server, 'Session', sessionId!), signedInAt + TTL.SESSION_TTL);

    // Later, the app sends the browser through an authorization request again: no login, and a longer session.
    await pause(2100);
    const url = oidc.buildAuthorizationUrl(webApp, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const response = await agent.request(url.href);
    const usedAt = epochNow();
    const location = new URL(response.headers.get('location') ?? '', server.issuer);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('code')).toEqual(expect.any(String));
    expectSeconds(sessionCookieExpiry(response), usedAt + TTL.SESSION_TTL);
    const [extended] = await server.services.sessions.list(someone.userId);
    expect(extended!.uid).toBe(session!.uid);
    expectSeconds(extended!.expiresAt!.getTime() / 1000, usedAt + TTL.SESSION_TTL);
    expect(extended!.expiresAt!.getTime()).toBeGreaterThan(session!.expiresAt!.getTime());
    expectSeconds(await storedExpiry(server, 'Session', sessionId!), usedAt + TTL.SESSION_TTL);
  });
});

describe('a token past its lifetime', () => {
  const SHORT_TTL = 2;
  let server: TestServer;
  let user: Fixtures;
  let webApp: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({ env: { ACCESS_TOKEN_TTL: String(SHORT_TTL) } });
    user = await createUser(server);
    const web = await createWebClient(server, { firstParty: true });
    webApp = await discover(server, web.clientId, web.secret);
  });
  afterAll(() => server.close());

  test('is inactive at introspection and refused at userinfo', async () => {
    const { tokens } = await signInAndRedeem(webApp, user);
    expectSeconds(tokens.expires_in, SHORT_TTL);
    const fresh = await oidc.tokenIntrospection(webApp, tokens.access_token);
    expect(fresh.active).toBe(true);

    // Wait until a second past its exp.
    await pause((fresh.exp! + 1) * 1000 - Date.now());
    expect(await oidc.tokenIntrospection(webApp, tokens.access_token)).toEqual({ active: false });
    const userinfo = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status).toBe(401);
    expect(userinfo.headers.get('www-authenticate')).toMatch(/invalid_token/);
  });
});
