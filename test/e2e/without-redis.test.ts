/**
 * The configuration `npm start` gives a newcomer, and any deployment without REDIS_URL: sessions, interactions,
 * codes, opaque tokens and the brute-force counters all in SQL. On PostgreSQL and on embedded PGlite, a relying
 * party signs a user in, refreshes, introspects and revokes, a second sign-in rides the session, and the login
 * page locks an account after too many failures, exactly as with Redis.
 */
import * as oidc from 'openid-client';
import { sqlKinds } from '../support/environment.js';
import { createUser, createWebClient, discover, loginFormOf, openLoginPage, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { UserAgent } from '../support/user-agent.js';

describe.each(sqlKinds)('without Redis, on %s', (sql) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ sql, redis: false, env: { LOGIN_MAX_FAILURES: '2', LOGIN_LOCK: '60' } });
  });
  afterAll(() => server?.close());

  test('everything short-lived is kept in SQL', async () => {
    expect(server.config.redis).toBeUndefined();
    expect(server.services.redis).toBeUndefined();
    expect((await (await fetch(`${server.url}/readyz`)).json()) as object).toMatchObject({ status: 'ready' });
  });

  test('sign-in, consent, code, userinfo, refresh, introspection and revocation', async () => {
    const user = await createUser(server);
    const web = await createWebClient(server);
    const rp = await discover(server, web.clientId, web.secret);
    const { tokens, sawConsentPage, agent } = await signInAndRedeem(rp, user, { scope: 'openid email offline_access', prompt: 'consent' });
    expect(sawConsentPage).toBe(true);
    expect(await oidc.fetchUserInfo(rp, tokens.access_token, user.userId)).toMatchObject({ sub: user.userId, email: user.email });

    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect((await oidc.tokenIntrospection(rp, refreshed.access_token)).active).toBe(true);
    // Every record of the flow so far is a row (revoking the token below removes its grant's tokens, as it should).
    const stored = await server.services.db.raw('select model, count(*)::int as rows from oidc_models group by model');
    const models = Object.fromEntries((stored.rows as { model: string; rows: number }[]).map((row) => [row.model, row.rows]));
    for (const model of ['Session', 'Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode']) expect(models[model]).toBeGreaterThan(0);
    await oidc.tokenRevocation(rp, refreshed.access_token);
    expect((await oidc.tokenIntrospection(rp, refreshed.access_token)).active).toBe(false);

    // The session is in SQL too: the same browser's next sign-in asks for no password and no consent.
    const again = await signInAndRedeem(rp, user, { scope: 'openid email', agent });
    expect(again.sawLoginPage).toBe(false);
    expect(again.sawConsentPage).toBe(false);
    expect(again.tokens.access_token).toEqual(expect.any(String));
  });

  test('an account is locked after too many failed sign-ins, counted in SQL', async () => {
    const user = await createUser(server);
    const web = await createWebClient(server);
    const agent = new UserAgent();
    let { page } = await openLoginPage(server, web.clientId, agent);
    for (let attempt = 1; attempt < 2; attempt++) {
      const failed = await agent.submit(page, loginFormOf(page), { email: user.email, password: 'wrong password' }, server.issuer);
      expect(failed.page?.status).toBe(400);
      page = failed.page ?? page;
    }
    const locked = await agent.submit(page, loginFormOf(page), { email: user.email, password: 'wrong password' }, server.issuer);
    expect(locked.page?.status).toBe(429);
    expect(Number(locked.page?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number((await server.services.db('rate_limits').count({ rows: '*' }).first())?.rows)).toBeGreaterThan(0);
  });
});
