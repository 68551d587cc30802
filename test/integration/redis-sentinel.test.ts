/**
 * Redis through Sentinel: a real sentinel process (redis-server --sentinel) watching the test Redis as its
 * master. The server finds the master through the sentinel and keeps its short-lived models there.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { openRedis } from '../../src/store/redis.js';
import { describeWithRedis, redisUrl } from '../support/environment.js';
import { createServiceClient, discover } from '../support/relying-party.js';
import { freePort } from '../support/process.js';
import { startTestServer } from '../support/server.js';


describeWithRedis('Redis Sentinel', () => {
  let scratch: string;
  let sentinel: ChildProcess;
  let sentinels: string;

  beforeAll(async () => {
    const master = new URL(redisUrl as string);
    scratch = await mkdtemp(path.join(tmpdir(), 'authz-sentinel-'));
    const port = await freePort();
    const config = path.join(scratch, 'sentinel.conf');
    await writeFile(
      config,
      [`port ${port}`, 'bind 127.0.0.1', `dir ${scratch}`, `sentinel monitor testmaster ${master.hostname} ${master.port || 6379} 1`, ''].join('\n'),
    );
    sentinel = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    sentinels = `127.0.0.1:${port}`;
    // Ready once it answers and knows its master.
    const probe = openRedis(`redis://127.0.0.1:${port}`);
    for (let attempt = 0; attempt < 100; attempt++) {
      const answer = await probe.call('SENTINEL', 'get-master-addr-by-name', 'testmaster').catch(() => null);
      if (Array.isArray(answer) && answer.length === 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    probe.disconnect();
  });
  afterAll(async () => {
    sentinel?.kill('SIGTERM');
    await rm(scratch, { recursive: true, force: true });
  });

  test('the server finds the master through the sentinel and keeps tokens there', async () => {
    const server = await startTestServer({ env: { REDIS_SENTINELS: sentinels, REDIS_SENTINEL_MASTER: 'testmaster' } });
    try {
      expect(server.config.redis?.sentinels).toEqual([{ host: '127.0.0.1', port: Number(sentinels.split(':')[1]) }]);
      await server.services.apis.create({ indicator: 'https://legacy.example.test', name: 'Legacy', accessTokenFormat: 'opaque', isDefault: true });
      const service = await createServiceClient(server);
      const config = await discover(server, service.clientId, service.secret);
      const { access_token } = await oidc.clientCredentialsGrant(config);
      expect((await oidc.tokenIntrospection(config, access_token)).active).toBe(true);
      const keys = await server.services.redis?.keys(`${server.config.redis?.keyPrefix}ClientCredentials:record:*`);
      expect(keys?.length).toBe(1);
      expect((await (await fetch(`${server.url}/readyz`)).json()) as object).toMatchObject({ checks: { redis: 'ok' } });
    } finally {
      await server.close();
    }
  });

  test('with a rediss:// REDIS_URL the master is reached over TLS, never in plain text', async () => {
    // The master here speaks plain TCP, so a TLS client cannot talk to it: a command must fail, not succeed in the clear.
    const port = Number(sentinels.split(':')[1]);
    const redis = openRedis({ url: 'rediss://:ignored@sentinel-named-host:1/0', sentinels: [{ host: '127.0.0.1', port }], sentinelMaster: 'testmaster' });
    try {
      expect(redis.options).toMatchObject({ tls: {}, enableTLSForSentinelMode: true, password: 'ignored' });
      await expect(redis.ping()).rejects.toThrow();
    } finally {
      redis.disconnect();
    }
  });

  test('a malformed sentinel list is refused with the setting named', async () => {
    const { loadConfig } = await import('../../src/config.js');
    expect(() => loadConfig({ REDIS_URL: 'redis://x', REDIS_SENTINELS: 'nohost' })).toThrow(/REDIS_SENTINELS must look like/);
  });
});
