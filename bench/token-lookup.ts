/**
 * What one access-token lookup costs, read from Redis and from the copy kept in process
 * (src/store/token-record-cache.ts): the main thread's CPU per lookup (`process.threadCpuUsage`), Redis's own
 * (its INFO `used_cpu_*`) and the wall time, with 16 lookups in flight as under load, over LOOKUPS lookups of one
 * client-credentials record, alternated three times.
 *
 *   npx tsx bench/token-lookup.ts            # BENCH_REDIS_URL, default redis://127.0.0.1:6379
 */
import { randomBytes } from 'node:crypto';
import { RedisBroadcast } from '../src/store/broadcast.js';
import { openRedis } from '../src/store/redis.js';
import { RedisAdapter } from '../src/store/redis-adapter.js';
import { TokenRecordCache } from '../src/store/token-record-cache.js';

const LOOKUPS = 30_000;
const IN_FLIGHT = 16;

const redis = openRedis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `bench:token-lookup:${process.pid}:`;
const broadcast = new RedisBroadcast(redis, `${prefix}tokens:deleted`);
const cache = new TokenRecordCache(broadcast, { maxEntries: 1000, ttlMs: 60_000 });
const fromRedis = new RedisAdapter('ClientCredentials', redis, prefix);
const kept = new RedisAdapter('ClientCredentials', redis, prefix, cache);

async function redisCpuSeconds(): Promise<number> {
  const info = await redis.info('cpu');
  const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return seconds('used_cpu_sys') + seconds('used_cpu_user');
}

async function measure(name: string, adapter: RedisAdapter, id: string): Promise<void> {
  let next = 0;
  const redisBefore = await redisCpuSeconds();
  const cpuBefore = process.threadCpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next++ < LOOKUPS) await adapter.find(id);
    }),
  );
  const wallUs = (performance.now() - started) * 1000;
  const cpu = process.threadCpuUsage(cpuBefore);
  const redisUs = ((await redisCpuSeconds()) - redisBefore) * 1e6;
  const per = (us: number) => (us / LOOKUPS).toFixed(1).padStart(6);
  console.log(`${name}: main thread ${per(cpu.user + cpu.system)} µs, Redis ${per(redisUs)} µs, wall ${per(wallUs)} µs per lookup`);
}

try {
  const id = randomBytes(34).toString('base64url').slice(0, 45);
  const now = Math.floor(Date.now() / 1000);
  const payload = { jti: id, kind: 'ClientCredentials', iat: now, exp: now + 3600, clientId: 'svc-bench', scope: 'read write', aud: 'https://api.bench.test' };
  await fromRedis.upsert(id, payload, 3600);
  await kept.find(id); // subscribes
  while (!broadcast.live) await new Promise((resolve) => setTimeout(resolve, 10));
  for (let pair = 0; pair < 3; pair++) {
    await measure('from Redis', fromRedis, id);
    await measure('kept     ', kept, id);
  }
  await fromRedis.destroy(id);
} finally {
  cache.close();
  redis.disconnect();
}
