/**
 * Staged key rotation across two instances sharing one keys/ folder, Postgres and Redis, while a relying party
 * (jose's remote JWKS set with its normal caching) keeps obtaining and verifying ID tokens and JWT access tokens.
 * The key clock is injected and moved forward; the relying party's cache is aged with it. The last block runs
 * on the real clock and the servers' own timers (KEYS_RESCAN_INTERVAL, KEY_ROTATION_INTERVAL) at their smallest.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type JSONWebKeySet, type JWTPayload, createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, decodeJwt, jwtVerify } from 'jose';
import Keygrip from 'keygrip';
import * as oidc from 'openid-client';
import { writeCookieSecret } from '../../src/keys/cookie-secrets.js';
import { activationFromKid, kidForActivation } from '../../src/keys/key-states.js';
import { listKeys, rotateIfDue, rotateKey } from '../../src/keys/rotation.js';
import { describeWithServers } from '../support/environment.js';
import { cleanEnvironment, runToEnd, waitFor } from '../support/process.js';
import {
  API,
  PASSWORD,
  POST_LOGOUT_REDIRECT_URI,
  createServiceClient,
  createUser,
  createWebClient,
  discover,
  openLoginPage,
  signInAndRedeem,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type UserAgent, parseForms } from '../support/user-agent.js';

const HOUR = 3600_000;
const JOSE_CACHE_MAX_AGE = 10 * 60_000; // jose's default cacheMaxAge

describeWithServers('signing key rotation', () => {
  let keysDir: string;
  let clockOffset = 0;
  const now = () => new Date(Date.now() + clockOffset);
  let first: TestServer;
  let second: TestServer;

  beforeAll(async () => {
    keysDir = await mkdtemp(path.join(tmpdir(), 'authz-rotation-'));
    first = await startTestServer({ keysDir, now });
    second = await startTestServer({ instanceOf: first, now });
    await first.services.apis.create({ indicator: API, name: 'API', scopes: ['read'], isDefault: true });
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
    await rm(keysDir, { recursive: true, force: true });
  });

  const instances = () => [first, second];
  const reloadAll = () => Promise.all(instances().map((instance) => instance.server.reloadKeys()));
  const publishedKids = async (instance: TestServer) => {
    const response = await fetch(`${instance.url}/jwks`);
    return ((await response.json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
  };

  test('rotation publishes first, signs after activation, retires after every signed token expired', async () => {
    const user = await createUser(first);
    const web = await createWebClient(first, { firstParty: true });
    const service = await createServiceClient(first);
    const config = await discover(first, web.clientId, web.secret);
    const signedIn = await signInAndRedeem(config, user, { scope: 'openid offline_access', prompt: 'consent' });
    let refreshToken = signedIn.tokens.refresh_token as string;

    // The relying party, with jose's normal caching; its cache ages with the injected clock.
    const jwks = createRemoteJWKSet(new URL(`${first.issuer}/jwks`));
    let lastFetch = now().getTime();
    const ageRelyingPartyCache = async () => {
      if (now().getTime() - lastFetch >= JOSE_CACHE_MAX_AGE) {
        await jwks.reload();
        lastFetch = now().getTime();
      }
    };

    const signed: { kid: string; exp: number }[] = [];
    let failures = 0;
    const verify = async (token: string, options: { audience: string; typ?: string }) => {
      try {
        const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: first.issuer, ...options });
        signed.push({ kid: protectedHeader.kid as string, exp: (payload as JWTPayload).exp as number });
        return protectedHeader.kid as string;
      } catch (error) {
        failures += 1;
        throw error;
      }
    };
    /** One round of traffic on both instances: an ID token from a refresh, a JWT access token from client credentials. */
    const traffic = async () => {
      const kids = new Set<string>();
      for (const instance of instances()) {
        const tokenEndpoint = `${instance.url}/token`;
        const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
        const refreshed = await fetch(tokenEndpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(web.clientId, web.secret) },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
        });
        expect(refreshed.status).toBe(200);
        const body = (await refreshed.json()) as { id_token: string; refresh_token: string };
        refreshToken = body.refresh_token;
        kids.add(await verify(body.id_token, { audience: web.clientId }));
        const credentials = await fetch(tokenEndpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(service.clientId, service.secret) },
          body: 'grant_type=client_credentials',
        });
        expect(credentials.status).toBe(200);
        kids.add(await verify(((await credentials.json()) as { access_token: string }).access_token, { audience: API, typ: 'at+jwt' }));
      }
      return [...kids];
    };

    const [oldKid] = await traffic();
    expect(await traffic()).toEqual([oldKid]);
    const oldIdToken = signedIn.tokens.id_token as string;
    expect(decodeProtectedHeader(oldIdToken).kid).toBe(oldKid);

    // Rotate: the new key is published on both instances at once, but does not sign yet.
    const rotation = await rotateKey(first.config, 3600, now());
    expect(rotation.created).toBe(true);
    expect(rotation.warning).toBeUndefined();
    await reloadAll();
    for (const instance of instances()) expect(await publishedKids(instance)).toEqual([oldKid, rotation.kid]);
    expect(await traffic()).toEqual([oldKid]);

    // Just before activation: still the old key. After: the new one, on both instances.
    clockOffset = rotation.activatesAt.getTime() - Date.now() - 1000;
    await reloadAll();
    await ageRelyingPartyCache();
    expect(await traffic()).toEqual([oldKid]);
    clockOffset += 2000;
    await reloadAll();
    await ageRelyingPartyCache();
    expect(await traffic()).toEqual([rotation.kid]);
    expect((await listKeys(first.config, now)).map(({ kid, state }) => ({ kid, state }))).toEqual([
      { kid: rotation.kid, state: 'current' },
      { kid: oldKid, state: 'previous' },
    ]);

    // An id_token_hint signed by the previous key still works for logout.
    const agent = signedIn.agent as UserAgent;
    const logout = oidc.buildEndSessionUrl(config, { id_token_hint: oldIdToken, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI });
    const confirm = await agent.follow(logout.href.replace(first.issuer, second.url), second.url);
    expect(confirm.page?.status).toBe(200);
    const form = parseForms(confirm.page!.html).find((candidate) => candidate.fields.some((field) => field.name === 'xsrf'));
    expect(form).toBeDefined();

    // Retirement: published until retireAfter past the new key's activation, then gone everywhere.
    const retiresAt = (await listKeys(first.config, now)).find((status) => status.kid === oldKid)?.retiresAt as Date;
    clockOffset = retiresAt.getTime() - Date.now() - 1000;
    await reloadAll();
    for (const instance of instances()) expect(await publishedKids(instance)).toContain(oldKid);
    clockOffset += 2000;
    await reloadAll();
    for (const instance of instances()) expect(await publishedKids(instance)).toEqual([rotation.kid]);
    const retiredAt = now().getTime() / 1000;
    const signedByOld = signed.filter((token) => token.kid === oldKid);
    expect(signedByOld.length).toBeGreaterThan(0);
    for (const token of signedByOld) expect(token.exp).toBeLessThan(retiredAt);

    await ageRelyingPartyCache();
    expect(await traffic()).toEqual([rotation.kid]);
    expect(failures).toBe(0);
  });

  test('a bad key file is reported and the running servers keep the keys they had', async () => {
    const before = await publishedKids(first);
    const bad = path.join(keysDir, '20991231T000000Z.pem');
    await writeFile(bad, 'not a key');
    try {
      expect(await first.server.reloadKeys()).toBe(false);
      expect(await publishedKids(first)).toEqual(before);
      const service = await createServiceClient(first);
      const tokens = await oidc.clientCredentialsGrant(await discover(first, service.clientId, service.secret));
      expect(decodeProtectedHeader(tokens.access_token).kid).toBe(before[0]);
    } finally {
      await rm(bad);
    }
  });

  test('scheduled rotation: two instances racing create exactly one next key', async () => {
    const config = { ...first.config, keys: { ...first.config.keys, rotationIntervalSeconds: 7 * 24 * 3600 } };
    const current = (await listKeys(first.config, now)).find((status) => status.state === 'current')!;
    clockOffset = current.activatesAt.getTime() + 7 * 24 * HOUR - Date.now();
    await reloadAll();
    const results = (await Promise.all(instances().map((instance) => rotateIfDue(config, instance.server.keyRing)))).flat();
    expect(results.filter((result) => result?.created)).toHaveLength(1);
    expect(new Set(results.map((result) => result?.kid)).size).toBe(1);
    expect((await listKeys(first.config, now)).filter((status) => status.state === 'next')).toHaveLength(1);
  });

  test('a new cookie secret signs from its activation; a user signed in before stays signed in', async () => {
    const user = await createUser(first);
    const web = await createWebClient(first, { firstParty: true });
    const config = await discover(first, web.clientId, web.secret);
    const before = await signInAndRedeem(config, user);
    expect(before.sawLoginPage).toBe(true);
    const oldSecrets = first.server.keyRing.cookieSecrets;

    const { created } = await writeCookieSecret(keysDir, now());
    expect(created).toBe(true);
    await reloadAll();
    const [newSecret] = first.server.keyRing.cookieSecrets;
    expect(oldSecrets).not.toContain(newSecret);
    expect(first.server.keyRing.cookieSecrets).toEqual(expect.arrayContaining(oldSecrets));
    expect(second.server.keyRing.cookieSecrets).toEqual(first.server.keyRing.cookieSecrets);

    // The session cookie signed under the old secret still verifies: no login page, on either instance.
    const again = await signInAndRedeem(config, user, { agent: before.agent });
    expect(again.sawLoginPage).toBe(false);
    expect(again.tokens.claims()?.sub).toBe(user.userId);
    // Cookies set from now on are signed with the new secret.
    const cookies = before.agent.cookies;
    const session = cookies.get('_session');
    expect(session).toBeDefined();
    expect(new Keygrip([newSecret as string]).verify(`_session=${session}`, cookies.get('_session.sig') as string)).toBe(true);
  });

  test('a sign-in in progress survives the swap to a new Provider', async () => {
    const user = await createUser(first);
    const web = await createWebClient(first, { firstParty: true });
    const { agent, page, form } = await openLoginPage(first, web.clientId);
    const providerBefore = first.server.provider;

    await rotateKey(first.config, 0, now());
    expect(await first.server.reloadKeys()).toBe(true);
    expect(first.server.provider).not.toBe(providerBefore);

    const done = await agent.submit(page, form, { email: user.email, password: PASSWORD }, first.issuer);
    expect(done.redirectedTo?.searchParams.get('code')).toEqual(expect.any(String));
  });
});

/**
 * Nothing here calls reloadKeys or rotateIfDue: the servers' own timers do the work, at the smallest intervals
 * config accepts (1 s). SIGHUP is not sent: under jest, `process.on('SIGHUP')` lands on the sandbox's copy of
 * `process`, so a real signal would end the test run (running-it.test.ts and compiled-build.test.ts send it to a
 * child process instead).
 */
describeWithServers('signing keys on the servers’ own timers', () => {
  const closeAfter: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(closeAfter.splice(0).map((server) => server.close()));
  });

  /** A server on a fresh keys folder with `env` on top, and an API so client credentials yield a JWT. */
  async function startWithTimers(env: Record<string, string>) {
    const server = await startTestServer({ env: { KEYS_RESCAN_INTERVAL: '1', ...env } });
    closeAfter.push(server);
    await server.services.apis.create({ indicator: API, name: 'API', scopes: ['read'], isDefault: true });
    const service = await createServiceClient(server);
    const clientCredentials = async () => (await oidc.clientCredentialsGrant(await discover(server, service.clientId, service.secret))).access_token;
    return { server, clientCredentials };
  }

  const publishedKids = async (server: TestServer) =>
    ((await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);

  test('a key written by `authz keys rotate` in another process is published within a rescan, with no SIGHUP', async () => {
    const { server, clientCredentials } = await startWithTimers({});
    const [signingKid] = await publishedKids(server);

    const cli = await runToEnd('src/cli.ts', ['keys', 'rotate', '--activate-in', '2h'], cleanEnvironment({ KEYS_DIR: server.config.keys.dir }));
    expect(cli.code).toBe(0);
    const written = cli.stdout.match(/wrote (\S+)\.pem/)?.[1] as string;
    expect(written).toEqual(expect.any(String));

    const published = await waitFor(async () => {
      const kids = await publishedKids(server);
      return kids.includes(written) && kids;
    }, 'the new key in JWKS', 10_000);
    expect(published).toEqual([signingKid, written]);
    // Published ahead of its activation: the key that signed before still signs.
    expect(decodeProtectedHeader(await clientCredentials()).kid).toBe(signingKid);
  });

  test('scheduled rotation: the server creates the next key, publishes it, signs with it after the delay', async () => {
    const rotationSeconds = 6;
    const { server, clientCredentials } = await startWithTimers({ KEY_ROTATION_INTERVAL: `${rotationSeconds}`, KEY_ACTIVATION_DELAY: '2' });
    const [firstKid] = (await publishedKids(server)) as [string];
    const oldToken = await clientCredentials();
    expect(decodeProtectedHeader(oldToken).kid).toBe(firstKid);

    // Named for the first key's activation plus the interval, so instances racing to create it pick one name.
    const firstActivation = activationFromKid(firstKid) as Date;
    const nextKid = kidForActivation(new Date(firstActivation.getTime() + rotationSeconds * 1000));
    const published = await waitFor(async () => {
      const kids = await publishedKids(server);
      return kids.length > 1 && kids;
    }, 'a second key in JWKS', 15_000);
    expect(published).toEqual([firstKid, nextKid]);
    // Published KEY_ACTIVATION_DELAY ahead: right after it appears, the first key still signs.
    expect(decodeProtectedHeader(await clientCredentials()).kid).toBe(firstKid);

    const newToken = await waitFor(async () => {
      const token = await clientCredentials();
      return decodeProtectedHeader(token).kid === nextKid && token;
    }, 'a token signed with the next key', 15_000);
    const nextActivation = activationFromKid(nextKid) as Date;
    expect((decodeJwt(newToken).iat as number) * 1000).toBeGreaterThanOrEqual(nextActivation.getTime());

    // A relying party fetching JWKS now verifies both: the replaced key stays published as `previous`.
    const jwks = createLocalJWKSet((await (await fetch(`${server.url}/jwks`)).json()) as JSONWebKeySet);
    const verifiedKid = async (token: string) =>
      (await jwtVerify(token, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' })).protectedHeader.kid;
    expect(await verifiedKid(oldToken)).toBe(firstKid);
    expect(await verifiedKid(newToken)).toBe(nextKid);
  });
});
