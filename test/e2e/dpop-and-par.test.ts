/**
 * DPoP (RFC 9449) and pushed authorization requests (RFC 9126), both on by default in oidc-provider 9, driven over
 * HTTP by openid-client as a relying party would use them, against Postgres and Redis: a single-page app signs in
 * with PAR + PKCE + DPoP, its access and refresh tokens are bound to its key wherever they are stored (opaque
 * access tokens in Redis and in the in-process copy, refresh tokens in Postgres, rotated successors included) and
 * in JWT access tokens; a service's client-credentials tokens are bound the same way; replays and misuse of proofs
 * and of request_uris are refused with OAuth errors, never a 500.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type JWK,
  type JWTPayload,
  SignJWT,
  calculateJwkThumbprint,
  createRemoteJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  jwtVerify,
} from 'jose';
import * as oidc from 'openid-client';
import { adminApiIndicator } from '../../src/admin/index.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { storageId } from '../../src/store/storage-id.js';
import { describeWithServers } from '../support/environment.js';
import { cleanEnvironment, runToEnd, waitFor } from '../support/process.js';
import {
  API,
  type Fixtures,
  PASSWORD,
  REDIRECT_URI,
  authorize,
  createServiceClient,
  createSpaClient,
  createUser,
  createWebClient,
  discover,
  loginFormOf,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type Page, UserAgent, signIn } from '../support/user-agent.js';

/** An API whose access tokens are opaque, so that their records (and the binding in them) are stored. */
const OPAQUE_API = 'https://legacy.example.test';
const PAR_URN = 'urn:ietf:params:oauth:request_uri:';

/** What went over the wire to the server and came back, as openid-client sent and received it. */
interface Exchange {
  url: string;
  dpop: string | null;
  status: number;
  body: Record<string, unknown>;
}

/** Makes `config` record every exchange (openid-client lower-cases `token_type`; the wire value is asserted here). */
function recording(config: oidc.Configuration): Exchange[] {
  const exchanges: Exchange[] = [];
  config[oidc.customFetch] = async (url, options) => {
    const response = await fetch(url, options as RequestInit);
    const text = await response.clone().text();
    exchanges.push({
      url,
      dpop: new Headers(options.headers as ConstructorParameters<typeof Headers>[0]).get('dpop'),
      status: response.status,
      body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {},
    });
    return response;
  };
  return exchanges;
}

/** The RFC 7638 thumbprint of a key pair's public key: what `cnf.jkt` must hold. */
async function thumbprintOf(keys: oidc.CryptoKeyPair): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(keys.publicKey));
}

/** A DPoP proof made by hand (openid-client makes a fresh one per request; replays need the same one twice). */
async function proof(keys: oidc.CryptoKeyPair, htm: string, htu: string, accessToken?: string): Promise<string> {
  const jwk: JWK = await exportJWK(keys.publicKey);
  const payload: JWTPayload & Record<string, unknown> = { jti: randomUUID(), htm, htu };
  if (accessToken) payload.ath = createHash('sha256').update(accessToken).digest('base64url');
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).setIssuedAt().sign(keys.privateKey);
}

/** A client-credentials request with a given DPoP proof, as raw HTTP (so that the very same proof can be sent again). */
function clientCredentials(target: TestServer, clientId: string, secret: string, dpop: string): Promise<Response> {
  const credentials = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64');
  return fetch(`${target.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${credentials}`, 'content-type': 'application/x-www-form-urlencoded', dpop },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
}

/**
 * Why the token endpoint refused `clientId` since `since`, oldest first: the reason oidc-provider keeps out of
 * the response (every invalid_grant reads "grant request is invalid") and our audit log records.
 */
async function refusalReasons(target: TestServer, clientId: string, since: Date): Promise<unknown[]> {
  await target.services.audit.flush();
  const events = await queryAuditEvents(target.services.db, { type: 'token_refused', clientId, since, limit: 100 });
  return events.reverse().map((event) => event.detail?.reason);
}

describeWithServers('DPoP and pushed authorization requests', () => {
  let server: TestServer;
  let user: Fixtures;
  let spaClientId: string;
  let spa: oidc.Configuration;
  /** A confidential client: introspectionPolicy (src/oidc/provider.ts) lets it introspect any client's token. */
  let introspector: oidc.Configuration;
  let discovery: Record<string, unknown>;

  beforeAll(async () => {
    server = await startTestServer();
    user = await createUser(server);
    await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read'], isDefault: true });
    await server.services.apis.create({ indicator: OPAQUE_API, name: 'Legacy', scopes: ['legacy'], accessTokenFormat: 'opaque' });
    ({ clientId: spaClientId } = await createSpaClient(server));
    spa = await discover(server, spaClientId, undefined, oidc.None());
    const service = await createServiceClient(server);
    introspector = await discover(server, service.clientId, service.secret);
    discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  });
  afterAll(() => server?.close());

  /** The refresh token's row in Postgres: whether it is consumed, and the binding it holds. */
  async function storedRefreshToken(token: string) {
    const row: { payload: { jkt?: string }; consumed_at: Date | null } | undefined = await server.services
      .db('oidc_models')
      .where({ model: 'RefreshToken', id: storageId(token) })
      .first('payload', 'consumed_at');
    if (!row) throw new Error('no stored refresh token');
    return { jkt: row.payload.jkt, consumed: row.consumed_at !== null };
  }

  /**
   * The SPA's whole sign-in: PAR (with a DPoP proof, so the code is bound to the key: dpop_jkt), PKCE, our login
   * and consent pages through the URL that PAR returned, then the code redeemed with the same DPoP key.
   */
  async function signInWithParAndDpop(options: { scope?: string; resource?: string } = {}) {
    const keys = await oidc.randomDPoPKeyPair();
    const DPoP = oidc.getDPoPHandle(spa, keys);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const parameters: Record<string, string> = {
      redirect_uri: REDIRECT_URI,
      scope: options.scope ?? 'openid profile offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    };
    if (options.resource) parameters.resource = options.resource;
    const authorizationUrl = await oidc.buildAuthorizationUrlWithPAR(spa, parameters, { DPoP });
    const agent = new UserAgent();
    const { redirectedTo } = await signIn(agent, authorizationUrl.href, { email: user.email, password: PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(
      spa,
      redirectedTo,
      { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce },
      undefined,
      { DPoP },
    );
    return { keys, DPoP, tokens, authorizationUrl, agent };
  }

  describe('discovery', () => {
    test('advertises DPoP, the PAR endpoint, and that PAR is optional', async () => {
      expect(discovery.dpop_signing_alg_values_supported).toEqual(['ES256', 'Ed25519', 'EdDSA']);
      expect(discovery.pushed_authorization_request_endpoint).toBe(`${server.issuer}/request`);
      // Absent, which means false (RFC 9126 §5): clients may still send plain authorization requests.
      expect(discovery).not.toHaveProperty('require_pushed_authorization_requests');
      // openid-client reads the same document.
      expect(spa.serverMetadata().pushed_authorization_request_endpoint).toBe(`${server.issuer}/request`);
    });
  });

  describe('a single-page app with PAR, PKCE and DPoP', () => {
    test('signs in; the authorization URL carries only client_id and request_uri; the tokens are DPoP tokens', async () => {
      const exchanges = recording(spa);
      try {
        const { tokens, authorizationUrl, keys } = await signInWithParAndDpop();
        expect(authorizationUrl.href.startsWith(`${server.issuer}/auth?`)).toBe(true);
        expect([...authorizationUrl.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
        expect(authorizationUrl.searchParams.get('request_uri')).toMatch(new RegExp(`^${PAR_URN}[A-Za-z0-9_-]{43}$`));

        const [pushed, redeemed] = exchanges;
        expect(pushed?.url).toBe(`${server.issuer}/request`);
        expect(pushed?.status).toBe(201);
        expect(pushed?.body).toEqual({ request_uri: authorizationUrl.searchParams.get('request_uri'), expires_in: 60 });
        expect(pushed?.dpop).toEqual(expect.stringMatching(/^ey/));
        expect(redeemed?.url).toBe(`${server.issuer}/token`);
        expect(redeemed?.body.token_type).toBe('DPoP');
        expect(tokens.token_type).toBe('dpop'); // openid-client's normalisation of the same value
        expect(tokens.claims()?.sub).toBe(user.userId);
        expect(decodeJwt(tokens.id_token as string).sub).toBe(user.userId);
        expect(tokens.refresh_token).toMatch(/^[A-Za-z0-9_-]{44}$/);

        // The opaque access token's record (Redis) and the refresh token's (Postgres) hold the key's thumbprint.
        const jkt = await thumbprintOf(keys);
        const accessToken = await oidc.tokenIntrospection(introspector, tokens.access_token);
        expect(accessToken).toMatchObject({ active: true, client_id: spaClientId, sub: user.userId, token_type: 'DPoP', cnf: { jkt } });
        const refreshToken = await oidc.tokenIntrospection(introspector, tokens.refresh_token as string);
        expect(refreshToken).toMatchObject({ active: true, client_id: spaClientId, cnf: { jkt } });
        expect(await storedRefreshToken(tokens.refresh_token as string)).toEqual({ jkt, consumed: false });
      } finally {
        delete spa[oidc.customFetch];
      }
    });

    test('userinfo answers with the proof, and refuses the same token as a Bearer token or with another key', async () => {
      const { tokens, DPoP } = await signInWithParAndDpop();
      const userinfo = await oidc.fetchUserInfo(spa, tokens.access_token, user.userId, { DPoP });
      expect(userinfo).toMatchObject({ sub: user.userId, name: expect.stringMatching(/^User \d+$/) });
      // Again: a later lookup may be answered from the in-process copy of the record (token-record-cache.ts).
      expect(await oidc.fetchUserInfo(spa, tokens.access_token, user.userId, { DPoP })).toEqual(userinfo);

      const bearer = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(bearer.status).toBe(401);
      expect(await bearer.json()).toEqual({ error: 'invalid_token', error_description: 'invalid token provided' });
      // The challenge names the DPoP scheme (the token is bound); the reason (failed jkt verification) stays in the logs.
      expect(bearer.headers.get('www-authenticate')).toBe(
        `DPoP realm="${server.issuer}", error="invalid_token", error_description="invalid token provided", algs="ES256 Ed25519 EdDSA"`,
      );

      const userinfoUrl = `${server.issuer}/me`;
      const otherKeys = await oidc.randomDPoPKeyPair();
      const stolen = await fetch(userinfoUrl, {
        headers: {
          authorization: `DPoP ${tokens.access_token}`,
          dpop: await proof(otherKeys, 'GET', userinfoUrl, tokens.access_token),
        },
      });
      expect(stolen.status).toBe(401);
      expect(stolen.headers.get('www-authenticate')).toMatch(/^DPoP realm="[^"]+", error="invalid_token", error_description="invalid token provided"/);

      const withoutProof = await fetch(userinfoUrl, { headers: { authorization: `DPoP ${tokens.access_token}` } });
      expect(withoutProof.status).toBe(400);
      expect(await withoutProof.json()).toEqual({ error: 'invalid_request', error_description: '`DPoP` header not provided' });
      expect(withoutProof.headers.get('www-authenticate')).toMatch(/^DPoP realm="[^"]+", error="invalid_request"/);
    });

    test('a code bound at PAR (dpop_jkt) is refused with another key or no proof, and stays the holder’s', async () => {
      const keys = await oidc.randomDPoPKeyPair();
      const DPoP = oidc.getDPoPHandle(spa, keys);
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const authorizationUrl = await oidc.buildAuthorizationUrlWithPAR(
        spa,
        {
          redirect_uri: REDIRECT_URI,
          scope: 'openid',
          code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
          code_challenge_method: 'S256',
          state,
        },
        { DPoP },
      );
      const { redirectedTo } = await signIn(new UserAgent(), authorizationUrl.href, { email: user.email, password: PASSWORD });
      const checks = { pkceCodeVerifier: codeVerifier, expectedState: state };
      const thief = oidc.getDPoPHandle(spa, await oidc.randomDPoPKeyPair());
      const since = new Date();
      const refused = { error: 'invalid_grant', error_description: 'grant request is invalid', status: 400 };
      await expect(oidc.authorizationCodeGrant(spa, redirectedTo, checks, undefined, { DPoP: thief })).rejects.toMatchObject(refused);
      await expect(oidc.authorizationCodeGrant(spa, redirectedTo, checks)).rejects.toMatchObject(refused);
      // Neither attempt consumed the code (patches/README.md): had one, the holder's redemption would be refused as
      // a replay and the whole grant revoked, which is what a thief without the key could then do to any sign-in.
      const exchanges = recording(spa);
      try {
        const tokens = await oidc.authorizationCodeGrant(spa, redirectedTo, checks, undefined, { DPoP });
        expect(tokens.id_token).toBeDefined();
        expect(exchanges.at(-1)?.body.token_type).toBe('DPoP');
      } finally {
        delete spa[oidc.customFetch];
      }
      expect(await refusalReasons(server, spaClientId, since)).toEqual(['DPoP proof key thumbprint does not match dpop_jkt', 'missing DPoP proof JWT']);
    });
  });

  describe('refresh tokens of a public client are bound to its DPoP key', () => {
    test('the same key refreshes, and the rotated successor (stored in Postgres) keeps the binding', async () => {
      const { tokens, DPoP, keys } = await signInWithParAndDpop();
      const jkt = await thumbprintOf(keys);
      const first = tokens.refresh_token as string;
      const exchanges = recording(spa);
      let refreshed: oidc.TokenEndpointResponse;
      try {
        refreshed = await oidc.refreshTokenGrant(spa, first, undefined, { DPoP });
        expect(exchanges.at(-1)?.body.token_type).toBe('DPoP');
      } finally {
        delete spa[oidc.customFetch];
      }
      const second = refreshed.refresh_token as string;
      expect(second).toMatch(/^[A-Za-z0-9_-]{44}$/);
      expect(second).not.toBe(first);
      expect(await storedRefreshToken(first)).toEqual({ jkt, consumed: true });
      expect(await storedRefreshToken(second)).toEqual({ jkt, consumed: false });
      expect(await oidc.tokenIntrospection(introspector, refreshed.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
      expect(await oidc.tokenIntrospection(introspector, second)).toMatchObject({ active: true, cnf: { jkt } });

      // And the successor's successor: the binding survives every rotation.
      const third = await oidc.refreshTokenGrant(spa, second, undefined, { DPoP });
      expect(await storedRefreshToken(third.refresh_token as string)).toEqual({ jkt, consumed: false });
    });

    test('another key, or no proof, is refused with invalid_grant and consumes nothing: the holder refreshes afterwards', async () => {
      const { tokens, DPoP, keys } = await signInWithParAndDpop();
      const jkt = await thumbprintOf(keys);
      const current = tokens.refresh_token as string;
      const thief = oidc.getDPoPHandle(spa, await oidc.randomDPoPKeyPair());

      const since = new Date();
      await expect(oidc.refreshTokenGrant(spa, current, undefined, { DPoP: thief })).rejects.toMatchObject({
        error: 'invalid_grant',
        error_description: 'grant request is invalid',
        status: 400,
      });
      await expect(oidc.refreshTokenGrant(spa, current)).rejects.toMatchObject({
        error: 'invalid_grant',
        error_description: 'grant request is invalid',
        status: 400,
      });
      expect(await refusalReasons(server, spaClientId, since)).toEqual(['failed jkt verification', 'failed jkt verification']);

      // Neither attempt consumed the token or revoked the grant.
      expect(await storedRefreshToken(current)).toEqual({ jkt, consumed: false });
      expect((await oidc.fetchUserInfo(spa, tokens.access_token, user.userId, { DPoP })).sub).toBe(user.userId);
      const refreshed = await oidc.refreshTokenGrant(spa, current, undefined, { DPoP });
      expect(refreshed.refresh_token).not.toBe(current);
      expect(await storedRefreshToken(refreshed.refresh_token as string)).toEqual({ jkt, consumed: false });
    });

    test('inside the reuse grace window the just-rotated token is accepted again only with the same key, still bound', async () => {
      expect(server.config.ttl.refreshReuseGrace).toBeGreaterThan(0);
      const { tokens, DPoP, keys } = await signInWithParAndDpop();
      const jkt = await thumbprintOf(keys);
      const first = tokens.refresh_token as string;
      await oidc.refreshTokenGrant(spa, first, undefined, { DPoP });

      const thief = oidc.getDPoPHandle(spa, await oidc.randomDPoPKeyPair());
      const since = new Date();
      await expect(oidc.refreshTokenGrant(spa, first, undefined, { DPoP: thief })).rejects.toMatchObject({ error: 'invalid_grant' });
      expect(await refusalReasons(server, spaClientId, since)).toEqual(['failed jkt verification']);
      // The second tab of the holder, presenting the token the first tab just rotated (src/store/refresh-token-adapter.ts).
      const again = await oidc.refreshTokenGrant(spa, first, undefined, { DPoP });
      expect(await storedRefreshToken(again.refresh_token as string)).toEqual({ jkt, consumed: false });
      expect(await oidc.tokenIntrospection(introspector, again.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
    });

    test('each rotation of a bound refresh token starts a full REFRESH_TOKEN_TTL, as for confidential clients', async () => {
      // Only an SPA's unbound refresh tokens keep what their predecessor had left (refreshTokenTtl in
      // src/oidc/provider.ts, as oidc-provider's default): a bound one is useless without the key.
      const { tokens, DPoP } = await signInWithParAndDpop();
      const first = await oidc.tokenIntrospection(introspector, tokens.refresh_token as string);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const refreshed = await oidc.refreshTokenGrant(spa, tokens.refresh_token as string, undefined, { DPoP });
      const successor = await oidc.tokenIntrospection(introspector, refreshed.refresh_token as string);
      expect((successor.exp as number) - (successor.iat as number)).toBe(server.config.ttl.refreshToken);
      expect(successor.exp).toBeGreaterThan(first.exp as number);
    });
  });

  describe('JWT access tokens for an API', () => {
    test('carry cnf.jkt, also after a refresh', async () => {
      const { tokens, DPoP, keys } = await signInWithParAndDpop({ scope: 'openid offline_access messages:read', resource: API });
      const jkt = await thumbprintOf(keys);
      const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
      const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' });
      expect(payload).toMatchObject({ client_id: spaClientId, sub: user.userId, scope: 'messages:read', cnf: { jkt } });

      const refreshed = await oidc.refreshTokenGrant(spa, tokens.refresh_token as string, undefined, { DPoP });
      const after = await jwtVerify(refreshed.access_token, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' });
      expect(after.payload).toMatchObject({ client_id: spaClientId, sub: user.userId, scope: 'messages:read', cnf: { jkt } });
    });
  });

  describe('client credentials with DPoP', () => {
    test('a service gets a DPoP-bound JWT for the default API', async () => {
      const { clientId, secret } = await createServiceClient(server, { scope: 'messages:read' });
      const config = await discover(server, clientId, secret);
      const keys = await oidc.randomDPoPKeyPair();
      const exchanges = recording(config);
      const tokens = await oidc.clientCredentialsGrant(config, undefined, { DPoP: oidc.getDPoPHandle(config, keys) });
      expect(exchanges[0]?.body.token_type).toBe('DPoP');
      const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${server.issuer}/jwks`)), {
        audience: API,
        typ: 'at+jwt',
      });
      expect(payload).toMatchObject({ client_id: clientId, scope: 'messages:read', cnf: { jkt: await thumbprintOf(keys) } });
    });

    test('an opaque token keeps its binding in Redis and in the in-process copy of its record', async () => {
      const { clientId, secret } = await createServiceClient(server, { scope: 'legacy' });
      const config = await discover(server, clientId, secret);
      const keys = await oidc.randomDPoPKeyPair();
      const tokens = await oidc.clientCredentialsGrant(config, { resource: OPAQUE_API }, { DPoP: oidc.getDPoPHandle(config, keys) });
      expect(tokens.access_token).toMatch(/^[A-Za-z0-9_-]{45}$/);
      const expected = { active: true, client_id: clientId, aud: OPAQUE_API, token_type: 'DPoP', cnf: { jkt: await thumbprintOf(keys) } };
      const cache = server.services.tokenCache;
      if (!cache) throw new Error('this test needs the token-record cache');
      expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject(expected);
      // Copies are kept once the deletion broadcast is live (token-record-cache.ts); the first lookup started it.
      await waitFor(() => cache.stats.live, 'the token cache broadcast');
      expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject(expected);
      const { hits } = cache.stats;
      expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject(expected);
      expect(cache.stats.hits).toBe(hits + 1);
    });
  });

  describe('replays and expiry', () => {
    /**
     * A refused request_uri is reported to the client's redirect_uri: the URL names none, but the client has
     * exactly one registered, which oidc-provider may then use (allowOmittingSingleRegisteredRedirectUri).
     */
    function expectRequestUriRefused({ page, redirectedTo }: { page?: Page; redirectedTo?: URL }) {
      expect(page).toBeUndefined();
      expect(`${redirectedTo?.origin}${redirectedTo?.pathname}`).toBe(REDIRECT_URI);
      expect(Object.fromEntries(redirectedTo?.searchParams ?? [])).toEqual({
        error: 'invalid_request_uri',
        error_description: 'request_uri is invalid, expired, or was already used',
        iss: server.issuer,
      });
    }

    test('the same DPoP proof sent twice to the token endpoint is refused the second time', async () => {
      const { clientId, secret } = await createServiceClient(server, { scope: 'messages:read' });
      const dpop = await proof(await oidc.randomDPoPKeyPair(), 'POST', `${server.issuer}/token`);
      const since = new Date();
      const first = await clientCredentials(server, clientId, secret, dpop);
      expect(first.status).toBe(200);
      expect(await first.json()).toMatchObject({ token_type: 'DPoP' });
      const replayed = await clientCredentials(server, clientId, secret, dpop);
      expect(replayed.status).toBe(400);
      expect(await replayed.json()).toEqual({ error: 'invalid_grant', error_description: 'grant request is invalid' });
      expect(await refusalReasons(server, clientId, since)).toEqual(['DPoP proof JWT Replay detected']);
    });

    test.each(['Redis', 'PostgreSQL', 'PGlite'] as const)('the same DPoP proof sent five times at once is accepted once (ReplayDetection in %s)', async (store) => {
      // oidc-provider asks the store whether a proof's jti was seen, then records it: two steps, which concurrent
      // requests all passed before our adapters made the first one claim the jti (src/store/adapters.ts).
      const target =
        store === 'Redis' ? server : await startTestServer({ redis: false, sql: store === 'PGlite' ? 'pglite' : 'postgres' });
      try {
        expect(target.config.redis === undefined).toBe(store !== 'Redis');
        const { clientId, secret } = await createServiceClient(target);
        const keys = await oidc.randomDPoPKeyPair();
        const since = new Date();
        for (let round = 0; round < 3; round++) {
          const dpop = await proof(keys, 'POST', `${target.issuer}/token`);
          const responses = await Promise.all(Array.from({ length: 5 }, () => clientCredentials(target, clientId, secret, dpop)));
          const bodies = await Promise.all(responses.map((response) => response.json() as Promise<Record<string, unknown>>));
          expect(responses.map((response) => response.status).sort()).toEqual([200, 400, 400, 400, 400]);
          expect(bodies.filter((body) => body.error === 'invalid_grant')).toHaveLength(4);
        }
        expect(await refusalReasons(target, clientId, since)).toEqual(Array(12).fill('DPoP proof JWT Replay detected'));
      } finally {
        if (target !== server) await target.close();
      }
    });

    test('a private_key_jwt client assertion is accepted once, also when five copies arrive at once', async () => {
      // The same ReplayDetection records each client assertion's jti (RFC 7523 §3).
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const { client } = await server.services.clients.create({
        type: 'service',
        name: 'Keyed job',
        tokenEndpointAuthMethod: 'private_key_jwt',
        jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'job-1', alg: 'ES256', use: 'sig' }] },
      });
      const clientId = client.clientId;
      // openid-client's own private_key_jwt works first.
      const config = await discover(server, clientId, undefined, oidc.PrivateKeyJwt(privateKey));
      expect((await oidc.clientCredentialsGrant(config)).token_type).toBe('bearer');

      const since = new Date();
      const assertion = await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid: 'job-1' })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(server.issuer)
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(privateKey);
      const send = () =>
        fetch(`${server.issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: clientId,
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: assertion,
          }),
        });
      const responses = await Promise.all(Array.from({ length: 5 }, send));
      expect(responses.map((response) => response.status).sort()).toEqual([200, 401, 401, 401, 401]);
      const again = await send();
      expect(again.status).toBe(401);
      expect(await again.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
      await server.services.audit.flush();
      const failures = await queryAuditEvents(server.services.db, { type: 'client_auth_failed', clientId, since });
      expect(failures.map((event) => event.detail?.reason)).toEqual(Array(5).fill('client assertion tokens must only be used once'));
    });

    test('a proof made for another endpoint is refused as invalid_dpop_proof', async () => {
      const { clientId, secret } = await createServiceClient(server, { scope: 'messages:read' });
      const keys = await oidc.randomDPoPKeyPair();
      const response = await clientCredentials(server, clientId, secret, await proof(keys, 'POST', `${server.issuer}/request`));
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: 'invalid_dpop_proof', error_description: 'DPoP proof htu mismatch' });
    });

    test('the same DPoP proof sent twice to userinfo is refused the second time', async () => {
      const { tokens, keys } = await signInWithParAndDpop({ scope: 'openid' });
      const userinfoUrl = `${server.issuer}/me`;
      const dpop = await proof(keys, 'GET', userinfoUrl, tokens.access_token);
      const request = () => fetch(userinfoUrl, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop } });
      const first = await request();
      expect(first.status).toBe(200);
      expect(await first.json()).toMatchObject({ sub: user.userId });
      const replayed = await request();
      expect(replayed.status).toBe(401);
      expect(replayed.headers.get('www-authenticate')).toMatch(/^DPoP realm="[^"]+", error="invalid_token", error_description="invalid token provided"/);
    });

    test('a request_uri is single-use: opening the same authorization URL again sends the browser back with an error', async () => {
      const { authorizationUrl, agent } = await signInWithParAndDpop({ scope: 'openid' });
      // The signed-in browser (back button) and a fresh one alike.
      for (const browser of [agent, new UserAgent()]) {
        expectRequestUriRefused(await browser.follow(authorizationUrl.href, server.issuer));
      }
    });

    test('a request_uri expires after 60 seconds, and its record leaves Redis with it', async () => {
      const url = await oidc.buildAuthorizationUrlWithPAR(spa, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      const id = (url.searchParams.get('request_uri') as string).slice(PAR_URN.length);
      const { redis } = server.services;
      const keyPrefix = server.config.redis?.keyPrefix;
      if (!redis || !keyPrefix) throw new Error('this test needs Redis');
      const ttlMs = await redis.pttl(`${keyPrefix}PushedAuthorizationRequest:record:${storageId(id)}`);
      // 60 s, plus the clock tolerance every Redis record is kept for (src/store/redis-adapter.ts).
      expect(ttlMs).toBeGreaterThan(70_000);
      expect(ttlMs).toBeLessThanOrEqual(75_000);

      const fresh = await new UserAgent().follow(url.href, server.issuer);
      expect(fresh.page?.status).toBe(200); // our login page

      // The server runs in this process: 61 s later by its clock (the record is still in Redis, and still refused).
      const realNow = Date.now;
      Date.now = () => realNow() + 61_000;
      try {
        expectRequestUriRefused(await new UserAgent().follow(url.href, server.issuer));
      } finally {
        Date.now = realNow;
      }
    });

    test('a person who takes longer than the request_uri lives to sign in still gets back to the app', async () => {
      const keys = await oidc.randomDPoPKeyPair();
      const DPoP = oidc.getDPoPHandle(spa, keys);
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const url = await oidc.buildAuthorizationUrlWithPAR(
        spa,
        {
          redirect_uri: REDIRECT_URI,
          scope: 'openid',
          code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
          code_challenge_method: 'S256',
          state: 'slow',
        },
        { DPoP },
      );
      const agent = new UserAgent();
      const { page } = await agent.follow(url.href, server.issuer);
      if (!page) throw new Error('no login page');
      // 75 s later Redis has let the pushed request go; the interaction carries what it asked for.
      const id = (url.searchParams.get('request_uri') as string).slice(PAR_URN.length);
      expect(await server.services.redis?.del(`${server.config.redis?.keyPrefix}PushedAuthorizationRequest:record:${storageId(id)}`)).toBe(1);
      const { redirectedTo } = await agent.submit(page, loginFormOf(page), { email: user.email, password: PASSWORD }, server.issuer);
      if (!redirectedTo) throw new Error('sign-in did not return to the app');
      const tokens = await oidc.authorizationCodeGrant(spa, redirectedTo, { pkceCodeVerifier: codeVerifier, expectedState: 'slow' }, undefined, {
        DPoP,
      });
      expect(tokens.claims()?.sub).toBe(user.userId);
      expect(await oidc.tokenIntrospection(introspector, tokens.access_token)).toMatchObject({ cnf: { jkt: await thumbprintOf(keys) } });
    });
  });

  describe('the PAR endpoint refuses', () => {
    test('a redirect_uri the client did not register', async () => {
      await expect(
        oidc.buildAuthorizationUrlWithPAR(spa, {
          redirect_uri: 'https://attacker.example.test/callback',
          scope: 'openid',
          code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
          code_challenge_method: 'S256',
        }),
      ).rejects.toMatchObject({
        status: 400,
        error: 'invalid_request',
        error_description: "redirect_uri did not match any of the client's registered redirect_uris",
      });
    });

    test('a public client without PKCE', async () => {
      await expect(oidc.buildAuthorizationUrlWithPAR(spa, { redirect_uri: REDIRECT_URI, scope: 'openid' })).rejects.toMatchObject({
        status: 400,
        error: 'invalid_request',
        error_description: 'Authorization Server policy requires PKCE to be used for this request',
      });
    });

    test('a confidential client that does not authenticate, or authenticates wrongly', async () => {
      const web = await createWebClient(server);
      const parameters = { client_id: web.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid' };
      const anonymous = await fetch(`${server.issuer}/request`, { method: 'POST', body: new URLSearchParams(parameters) });
      expect(anonymous.status).toBe(401);
      expect(await anonymous.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });

      const wrongSecret = await discover(server, web.clientId, 'not-the-secret');
      await expect(oidc.buildAuthorizationUrlWithPAR(wrongSecret, { redirect_uri: REDIRECT_URI, scope: 'openid' })).rejects.toMatchObject({
        status: 401,
        error: 'invalid_client',
        error_description: 'client authentication failed',
      });

      // With its secret, the same client pushes its request.
      const config = await discover(server, web.clientId, web.secret);
      const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: REDIRECT_URI, scope: 'openid' });
      expect(url.searchParams.get('request_uri')).toMatch(new RegExp(`^${PAR_URN}`));
    });
  });

  describe('per-client policies: DPoP and PAR required (Keycloak’s “DPoP bound access tokens”, “PAR required”)', () => {
    const PAR_REFUSAL = 'Pushed Authorization Request must be used';
    const SERVICE_PAR_REASON = 'requirePar: a service client sends no authorization requests, so there is nothing to push (PAR is for web and spa clients)';
    let adminToken: string;

    beforeAll(async () => {
      const { client, secret } = await server.services.clients.create({ type: 'service', name: 'ops', scope: 'admin' });
      const config = await discover(server, client.clientId, secret);
      adminToken = (await oidc.clientCredentialsGrant(config, { resource: adminApiIndicator(server.issuer) })).access_token;
    });

    async function admin(method: string, path: string, json: unknown) {
      const response = await fetch(`${server.url}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(json),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    }

    /** Where `/auth` at `base` sends the browser for a plain (not pushed) authorization request of `clientId`. */
    async function plainAuthorizationRedirect(base: string, clientId: string): Promise<URL> {
      const url = new URL(`${base}/auth`);
      url.search = new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: REDIRECT_URI,
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
        state: 'plain',
      }).toString();
      const response = await fetch(url, { redirect: 'manual' });
      expect(response.status).toBe(303);
      return new URL(response.headers.get('location') as string, base);
    }

    function expectParRequired(redirect: URL) {
      expect(`${redirect.origin}${redirect.pathname}`).toBe(REDIRECT_URI);
      expect(Object.fromEntries(redirect.searchParams)).toEqual({ error: 'invalid_request', error_description: PAR_REFUSAL, state: 'plain', iss: server.issuer });
    }

    const noProof = { error: 'invalid_grant', error_description: 'grant request is invalid', status: 400 };

    test('requireDpop: a web client’s code and refresh token requests are refused without a proof and served with one', async () => {
      const { client, secret } = await server.services.clients.create({
        type: 'web',
        name: 'Bound web app',
        redirectUris: [REDIRECT_URI],
        firstParty: true,
        requireDpop: true,
      });
      expect(client).toMatchObject({ requireDpop: true, requirePar: false, metadata: {} });
      const config = await discover(server, client.clientId, secret);
      const flow = await authorize(config, user, { scope: 'openid offline_access', prompt: 'consent' });
      const checks = { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce };
      const since = new Date();
      await expect(oidc.authorizationCodeGrant(config, flow.callbackUrl, checks)).rejects.toMatchObject(noProof);

      // The refusal came before the code was consumed: the same code is redeemed with a proof.
      const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair());
      const exchanges = recording(config);
      const tokens = await oidc.authorizationCodeGrant(config, flow.callbackUrl, checks, undefined, { DPoP });
      expect(exchanges.at(-1)?.body.token_type).toBe('DPoP');

      const refreshToken = tokens.refresh_token as string;
      await expect(oidc.refreshTokenGrant(config, refreshToken)).rejects.toMatchObject(noProof);
      await oidc.refreshTokenGrant(config, refreshToken, undefined, { DPoP });
      expect(exchanges.at(-1)?.body.token_type).toBe('DPoP');
      expect(await refusalReasons(server, client.clientId, since)).toEqual(['DPoP proof JWT not provided', 'DPoP proof JWT not provided']);
    });

    test('requireDpop: a service is refused client credentials without a proof; PATCH requireDpop false lifts it at once', async () => {
      const created = await admin('POST', '/clients', { type: 'service', name: 'Bound job', scope: 'messages:read', requireDpop: true });
      expect(created).toMatchObject({ status: 201, body: { requireDpop: true, requirePar: false } });
      const clientId = created.body.clientId as string;
      const config = await discover(server, clientId, created.body.clientSecret as string);
      const exchanges = recording(config);
      await expect(oidc.clientCredentialsGrant(config)).rejects.toMatchObject(noProof);
      await oidc.clientCredentialsGrant(config, undefined, { DPoP: oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair()) });
      expect(exchanges.at(-1)?.body.token_type).toBe('DPoP');

      const since = new Date();
      const patched = await admin('PATCH', `/clients/${clientId}`, { requireDpop: false });
      expect(patched).toMatchObject({ status: 200, body: { requireDpop: false } });
      await oidc.clientCredentialsGrant(config);
      expect(exchanges.at(-1)?.body.token_type).toBe('Bearer');
      await server.services.audit.flush();
      const [updated] = await queryAuditEvents(server.services.db, { type: 'client_updated', clientId, since });
      expect(updated?.detail).toMatchObject({ by: 'admin-api', fields: ['requireDpop'] });
    });

    test('requirePar: a plain authorization URL is sent back with invalid_request; a pushed one signs in; PATCH lifts it', async () => {
      const created = await admin('POST', '/clients', { type: 'spa', name: 'Pushed SPA', redirectUris: [REDIRECT_URI], firstParty: true, requirePar: true });
      expect(created).toMatchObject({ status: 201, body: { requirePar: true, requireDpop: false } });
      const clientId = created.body.clientId as string;
      // oidc-provider checks the redirect_uri against the registration before it reports the refusal there.
      expectParRequired(await plainAuthorizationRedirect(server.url, clientId));

      const config = await discover(server, clientId, undefined, oidc.None());
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const pushed = await oidc.buildAuthorizationUrlWithPAR(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state: 'pushed',
      });
      const { redirectedTo } = await signIn(new UserAgent(), pushed.href, { email: user.email, password: PASSWORD });
      const tokens = await oidc.authorizationCodeGrant(config, redirectedTo, { pkceCodeVerifier: codeVerifier, expectedState: 'pushed' });
      expect(tokens.claims()?.sub).toBe(user.userId);

      expect(await admin('PATCH', `/clients/${clientId}`, { requirePar: false })).toMatchObject({ status: 200, body: { requirePar: false } });
      expect((await plainAuthorizationRedirect(server.url, clientId)).pathname).toMatch(/^\/interaction\//);
    });

    test('the CLI sets and lifts both; a server reading the client anew (CLIENT_CACHE_TTL_MS=0) follows at once', async () => {
      const authz = (args: string[]) => runToEnd('src/cli.ts', args, cleanEnvironment(server.env));
      const added = await authz(['clients', 'add', '--type', 'web', '--name', 'Strict', '--redirect-uri', REDIRECT_URI, '--require-dpop', '--require-par', '--json']);
      expect({ code: added.code, stderr: added.stderr }).toEqual({ code: 0, stderr: '' });
      const { client_id: clientId } = JSON.parse(added.stdout) as { client_id: string };
      expect(JSON.parse(added.stdout)).toMatchObject({ require_dpop: true, require_par: true });
      const listed = JSON.parse((await authz(['clients', 'list', '--json'])).stdout) as Record<string, unknown>[];
      expect(listed.find((client) => client.client_id === clientId)).toMatchObject({ require_dpop: true, require_par: true });

      // The CLI writes the database; a server sees the change when its cached copy lapses, here at once.
      const fresh = await startTestServer({ instanceOf: server, env: { CLIENT_CACHE_TTL_MS: '0' } });
      try {
        expectParRequired(await plainAuthorizationRedirect(fresh.url, clientId));
        const lifted = await authz(['clients', 'update', clientId, '--no-require-par', '--json']);
        expect({ code: lifted.code, stderr: lifted.stderr }).toEqual({ code: 0, stderr: '' });
        expect(JSON.parse(lifted.stdout)).toMatchObject({ require_dpop: true, require_par: false });
        expect((await plainAuthorizationRedirect(fresh.url, clientId)).pathname).toMatch(/^\/interaction\//);
      } finally {
        await fresh.close();
      }
      const show = JSON.parse((await authz(['clients', 'show', clientId])).stdout) as Record<string, unknown>;
      expect(show).toMatchObject({ require_dpop: true, require_par: false });
      expect((await authz(['clients', 'update', clientId, '--no-require-dpop', '--json'])).stdout).toMatch(/"require_dpop": false/);
    });

    test('requirePar on a service client: one line and exit 1 from the CLI, a 400 with the reason from the admin API', async () => {
      const authz = (args: string[]) => runToEnd('src/cli.ts', args, cleanEnvironment(server.env));
      const refused = await authz(['clients', 'add', '--type', 'service', '--name', 'Job', '--require-par']);
      expect(refused).toEqual({ code: 1, stdout: '', stderr: `authz: ${SERVICE_PAR_REASON}\n` });
      const { clientId } = await createServiceClient(server);
      const refusedUpdate = await authz(['clients', 'update', clientId, '--require-par']);
      expect(refusedUpdate).toEqual({ code: 1, stdout: '', stderr: `authz: ${SERVICE_PAR_REASON}\n` });

      const invalid = { error: 'invalid_request', error_description: SERVICE_PAR_REASON };
      expect(await admin('POST', '/clients', { type: 'service', name: 'Job', requirePar: true })).toEqual({ status: 400, body: invalid });
      expect(await admin('PATCH', `/clients/${clientId}`, { requirePar: true })).toEqual({ status: 400, body: invalid });
      expect((await admin('PATCH', `/clients/${clientId}`, { requireDpop: 'yes' })).status).toBe(400);
      expect(await server.services.clients.require(clientId)).toMatchObject({ requireDpop: false, requirePar: false });

      const document = (await (await fetch(`${server.url}/admin/v1/openapi.json`)).json()) as { components: { schemas: Record<string, { properties: object }> } };
      for (const schema of ['NewClient', 'ClientChanges']) {
        expect(document.components.schemas[schema]?.properties).toHaveProperty('requireDpop');
        expect(document.components.schemas[schema]?.properties).toHaveProperty('requirePar');
      }
    });
  });
});
