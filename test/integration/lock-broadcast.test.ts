/**
 * Brute-force locks across instances: each instance believes "not locked" for a minute while the lock broadcast
 * is live, and a lock imposed on another instance still takes effect at once, because it is announced. When the
 * subscription drops, what was believed is forgotten, so a lock whose announcement was missed is still found.
 */
import { FailureLimiter } from '../../src/security/failure-limiter.js';
import { LockBroadcast } from '../../src/security/lock-broadcast.js';
import { openRedis, type RedisClient } from '../../src/store/redis.js';
import { createTestDatabase, createTestRedis, describeWithRedis, redisUrl, type TestDatabase, type TestRedis } from '../support/environment.js';

const OPTIONS = { name: 'client-auth', maxFailures: 2, windowSeconds: 60, lockSeconds: 60, maxLockSeconds: 3600 };

/** Polls `check` every 10 ms until it holds; resolves to the milliseconds it took, or throws after `withinMs`. */
async function eventually(check: () => boolean | Promise<boolean>, withinMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > withinMs) throw new Error(`not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}

describeWithRedis('lock broadcast', () => {
  let database: TestDatabase;
  let keys: TestRedis;
  const instances: { redis: RedisClient; broadcast: LockBroadcast; limiter: FailureLimiter }[] = [];

  /** One server instance's limiter: its own Redis connections, the same prefix as the others. */
  function instance() {
    const redis = openRedis(redisUrl as string);
    const broadcast = new LockBroadcast(redis, `${keys.keyPrefix}limit:locks`);
    const limiter = new FailureLimiter({ redis, redisKeyPrefix: keys.keyPrefix, db: database.db, broadcast }, OPTIONS);
    const created = { redis, broadcast, limiter };
    instances.push(created);
    return created;
  }

  /** Locks `key` through `limiter`: as many failures as it allows, the last of which locks. */
  async function lock(limiter: FailureLimiter, key: string): Promise<number> {
    let imposed = 0;
    for (let attempt = 0; attempt < OPTIONS.maxFailures; attempt++) imposed = await limiter.fail(key);
    return imposed;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    keys = await createTestRedis();
  });

  afterAll(async () => {
    for (const { redis, broadcast } of instances) {
      broadcast.close();
      redis.disconnect();
    }
    await keys.drop();
    await database.drop();
  });

  test('a lock imposed on one instance is seen at once by another that believed the key unlocked', async () => {
    const first = instance();
    const second = instance();
    // The first check subscribes; once live, "not locked" is believed for a minute.
    expect(await first.limiter.lockedFor('service-a')).toBe(0);
    expect(await second.limiter.lockedFor('service-a')).toBe(0);
    await eventually(() => first.broadcast.live && second.broadcast.live, 5000);
    expect(await first.limiter.lockedFor('service-b')).toBe(0);

    expect(await lock(second.limiter, 'service-b')).toBe(60_000);
    // Well inside the 1 s the belief would last without the broadcast, and far inside the minute it lasts with it.
    const tookMs = await eventually(async () => (await first.limiter.lockedFor('service-b')) > 0, 900);
    expect(tookMs).toBeLessThan(900);
    expect(await first.limiter.lockedFor('service-a')).toBe(0);
  });

  test('when the subscription drops, beliefs are forgotten, so a lock whose announcement was missed is found', async () => {
    const { redis, broadcast, limiter } = instance();
    expect(await limiter.lockedFor('service-c')).toBe(0);
    await eventually(() => broadcast.live, 5000);
    expect(await limiter.lockedFor('service-c')).toBe(0); // believed for a minute from here

    // Every subscriber connection on this Redis (only this file's instances subscribe to anything here).
    await redis.call('client', 'kill', 'type', 'pubsub');
    await eventually(() => !broadcast.live, 5000);
    // A lock stored without its announcement: what another instance's lock looks like while this one is deaf.
    await redis.set(`${keys.keyPrefix}limit:${OPTIONS.name}:locked:service-c`, '1', 'PX', 60_000);
    expect(await limiter.lockedFor('service-c')).toBeGreaterThan(0);
    // And the subscription comes back by itself.
    await eventually(() => broadcast.live, 5000);
  });

  test('an announcement for another limiter, or one that is not ours, changes nothing it should not', async () => {
    const { redis, broadcast, limiter } = instance();
    expect(await limiter.lockedFor('service-d')).toBe(0);
    await eventually(() => broadcast.live, 5000);
    expect(await limiter.lockedFor('service-d')).toBe(0);
    await redis.publish(`${keys.keyPrefix}limit:locks`, 'not json');
    await redis.publish(`${keys.keyPrefix}limit:locks`, JSON.stringify(['login-ip', 'service-d']));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(broadcast.live).toBe(true);
    expect(await limiter.lockedFor('service-d')).toBe(0);
  });
});
