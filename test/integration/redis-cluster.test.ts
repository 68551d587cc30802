/**
 * Redis Cluster: the server pointed at a real three-master cluster (REDIS_CLUSTER_NODES) keeps sessions, codes,
 * access tokens and brute-force counters there, spread over the masters, and every flow that crosses keys
 * (grant revocation, a user's sessions, client locks) still holds.
 */
import { randomUUID } from 'node:crypto';
import type { Cluster } from 'ioredis';
import * as oidc from 'openid-client';
import { loadConfig } from '../../src/config.js';
import { RedisBroadcast } from '../../src/store/broadcast.js';
import { openRedis } from '../../src/store/redis.js';
import { RedisAdapter } from '../../src/store/redis-adapter.js';
import { TokenRecordCache } from '../../src/store/token-record-cache.js';
import { describeWithRedis, keysMatching } from '../support/environment.js';
import { type Fixtures, createServiceClient, createUser, createWebClient, discover, signInAndRedeem } from '../support/relying-party.js';
import { waitFor } from '../support/process.js';
import { type TestRedisCluster, startRedisCluster } from '../support/redis-cluster.js';
import { type TestServer, startTestServer } from '../support/server.js';

describeWithRedis('Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let server: TestServer;
  let user: Fixtures;
  let web: oidc.Configuration;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    server = await startTestServer({ env: { REDIS_CLUSTER_NODES: cluster.nodes, CLIENT_AUTH_MAX_FAILURES: '3', REFRESH_REUSE_GRACE: '0' } });
    user = await createUser(server);
    const client = await createWebClient(server, { firstParty: true });
    web = await discover(server, client.clientId, client.secret);
  });
  afterAll(async () => {
    await server?.close();
    await cluster?.stop();
  });

  const keyPrefix = () => server.config.redis?.keyPrefix as string;
  const keysOnEachMaster = async (pattern: string) =>
    Promise.all(cluster.client.nodes('master').map(async (node) => (await keysMatching(node, pattern)).length));

  test('sign-in, userinfo and refresh work, with the short-lived records spread over the masters', async () => {
    const { tokens } = await signInAndRedeem(web, user, { scope: 'openid email offline_access', prompt: 'consent' });
    expect((await oidc.fetchUserInfo(web, tokens.access_token, user.userId)).email).toBe(user.email);
    const refreshed = await oidc.refreshTokenGrant(web, tokens.refresh_token as string);
    expect((await oidc.tokenIntrospection(web, refreshed.access_token)).active).toBe(true);

    const prefix = server.config.redis?.keyPrefix as string;
    expect(server.config.redis?.clusterNodes).toHaveLength(3);
    expect((await keysMatching(cluster.client, `${prefix}Session:record:*`)).length).toBeGreaterThan(0);
    // One sign-in leaves a handful of records, which may all hash to one master (about one time in ten); a few
    // more people's sessions and tokens (a user's own records may share a slot) make "all on one" far less likely.
    for (let person = 0; person < 5; person++) await signInAndRedeem(web, await createUser(server), { scope: 'openid' });
    const perMaster = await keysOnEachMaster(`${prefix}*`);
    expect(perMaster.filter((count) => count > 0).length).toBeGreaterThan(1);
    expect((await (await fetch(`${server.url}/readyz`)).json()) as object).toMatchObject({ checks: { redis: 'ok' } });
  });

  test('a rotated refresh token presented again ends the grant: its access tokens, wherever kept, are inactive', async () => {
    const { tokens } = await signInAndRedeem(web, user, { scope: 'openid offline_access', prompt: 'consent' });
    const first = tokens.refresh_token as string;
    const second = await oidc.refreshTokenGrant(web, first);
    await expect(oidc.refreshTokenGrant(web, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(web, tokens.access_token)).active).toBe(false);
    expect((await oidc.tokenIntrospection(web, second.access_token)).active).toBe(false);
  });

  test('opaque client-credentials tokens are introspected and revoked', async () => {
    await server.services.apis.create({ indicator: 'https://legacy.example.test', name: 'Legacy', accessTokenFormat: 'opaque', isDefault: true });
    const service = await createServiceClient(server);
    const config = await discover(server, service.clientId, service.secret);
    const { access_token } = await oidc.clientCredentialsGrant(config);
    expect((await oidc.tokenIntrospection(config, access_token)).active).toBe(true);
    await oidc.tokenRevocation(config, access_token);
    expect((await oidc.tokenIntrospection(config, access_token)).active).toBe(false);
  });

  test('a token kept in memory by one instance is dropped there when another revokes it, the announcement crossing the cluster', async () => {
    const instances = [0, 1].map(() => {
      const redis = openRedis({ url: 'redis://', clusterNodes: server.config.redis?.clusterNodes, sentinelMaster: '' });
      const broadcast = new RedisBroadcast(redis, `${keyPrefix()}tokens:deleted`);
      const cache = new TokenRecordCache(broadcast, { maxEntries: 100, ttlMs: 60_000 });
      return { redis, broadcast, cache, tokens: new RedisAdapter('ClientCredentials', redis, keyPrefix(), cache) };
    });
    const [issuer, resourceSide] = instances as [(typeof instances)[0], (typeof instances)[0]];
    try {
      const id = randomUUID();
      const payload = { jti: id, kind: 'ClientCredentials', exp: Math.floor(Date.now() / 1000) + 60, clientId: 'svc' };
      await issuer.tokens.upsert(id, payload, 60);
      await resourceSide.tokens.find(id);
      await waitFor(() => resourceSide.broadcast.live, 'the broadcast to be live');
      expect(await resourceSide.tokens.find(id)).toEqual(payload); // kept from here on
      await issuer.tokens.destroy(id);
      await waitFor(async () => (await resourceSide.tokens.find(id)) === undefined, 'the copy to be dropped', 1000);
    } finally {
      for (const { cache, redis } of instances) {
        cache.close();
        redis.disconnect();
      }
    }
  });

  test("a user's sessions are listed and ended everywhere", async () => {
    const someone = await createUser(server);
    await signInAndRedeem(web, someone);
    await signInAndRedeem(web, someone);
    expect(await server.services.sessions.list(someone.userId)).toHaveLength(2);
    await server.services.users.revokeSessions(someone.email);
    expect(await server.services.sessions.list(someone.userId)).toEqual([]);
  });

  test('failed client authentications are counted in the cluster and lock the client', async () => {
    const service = await createServiceClient(server);
    const token = (secret: string) =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${service.clientId}:${secret}`).toString('base64')}` },
        body: 'grant_type=client_credentials',
      });
    for (let attempt = 0; attempt < 3; attempt++) expect((await token('wrong')).status).toBe(401);
    const locked = await token(service.secret);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('Redis Cluster settings', () => {
  test('Sentinel and Cluster together are refused, naming both settings', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://x', REDIS_SENTINELS: 'a:26379', REDIS_CLUSTER_NODES: 'b:6379' })).toThrow(
      /REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set/,
    );
  });

  test('a database other than 0 is refused, since a Cluster has only database 0', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://:pw@x/2', REDIS_CLUSTER_NODES: 'b:6379' })).toThrow(/a Redis Cluster has only database 0/);
    expect(loadConfig({ REDIS_URL: 'redis://:pw@x/0', REDIS_CLUSTER_NODES: 'b:6379,c:6380' }).redis?.clusterNodes).toEqual([
      { host: 'b', port: 6379 },
      { host: 'c', port: 6380 },
    ]);
  });

  test('REDIS_URL gives the cluster its password and TLS, and with TLS nodes are dialled by name', () => {
    const cluster = openRedis({ url: 'rediss://:s3cret@ignored:6379', clusterNodes: [{ host: '127.0.0.1', port: 1 }], sentinelMaster: '' }) as Cluster;
    try {
      expect(cluster.isCluster).toBe(true);
      expect(cluster.options.redisOptions).toMatchObject({ password: 's3cret', tls: {} });
      expect(cluster.options.scaleReads).toBe('master');
      const dialled = new Promise((resolve) => cluster.options.dnsLookup?.('node-1.cache.internal', (_error, address) => resolve(address)));
      return expect(dialled).resolves.toBe('node-1.cache.internal');
    } finally {
      cluster.disconnect();
    }
  });

  test('a malformed node list is refused with the setting named', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://x', REDIS_CLUSTER_NODES: 'nohost' })).toThrow(/REDIS_CLUSTER_NODES must look like/);
  });
});
