/**
 * A brute-force lock lifted by hand (src/security/lock-administration.ts) on each store the limits run on: SQL
 * (PostgreSQL, PGlite) without Redis, and Redis. The lock and the failures go, and so does the record of earlier
 * locks, so the next lock is the first lock's length again rather than twice it.
 */
import { FailureLimiter, type LimiterStore } from '../../src/security/failure-limiter.js';
import { openRedis, type RedisClient } from '../../src/store/redis.js';
import { createTestDatabase, createTestRedis, redisUrl, sqlKinds, type TestDatabase, type TestRedis } from '../support/environment.js';

const OPTIONS = { name: 'login-account', maxFailures: 2, windowSeconds: 60, lockSeconds: 60, maxLockSeconds: 3600 };
const stores = [...sqlKinds.map((kind) => ({ name: kind, redis: false })), ...(redisUrl ? [{ name: 'redis', redis: true }] : [])];

describe.each(stores)('unlocking on $name', ({ name, redis: withRedis }) => {
  let database: TestDatabase;
  let keys: TestRedis | undefined;
  let redis: RedisClient | undefined;
  let limiter: FailureLimiter;

  beforeAll(async () => {
    database = await createTestDatabase(name === 'redis' ? undefined : (name as 'postgres' | 'pglite'));
    if (withRedis) {
      keys = await createTestRedis();
      redis = openRedis(redisUrl as string);
    }
    const store: LimiterStore = { db: database.db, redis, redisKeyPrefix: keys?.keyPrefix };
    limiter = new FailureLimiter(store, OPTIONS);
  });
  afterAll(async () => {
    redis?.disconnect();
    await keys?.drop();
    await database.drop();
  });

  /** maxFailures failures, the last of which locks; resolves to the lock imposed, in milliseconds. */
  async function lock(key: string): Promise<number> {
    let imposed = 0;
    for (let attempt = 0; attempt < OPTIONS.maxFailures; attempt++) imposed = await limiter.fail(key);
    return imposed;
  }

  test('the maxFailures-th failure locks, not the one after it', async () => {
    const key = `exact-${name}@example.test`;
    for (let attempt = 1; attempt < OPTIONS.maxFailures; attempt++) expect(await limiter.fail(key)).toBe(0);
    expect(await limiter.lockedFor(key)).toBe(0);
    expect(await limiter.fail(key)).toBe(60_000);
    expect(await limiter.lockedFor(key)).toBeGreaterThan(55_000);
  });

  test('the lock, the failures and the earlier locks are forgotten', async () => {
    const key = `someone-${name}@example.test`;
    expect(await lock(key)).toBe(60_000);
    expect(await limiter.lockRemaining(key)).toBeGreaterThan(55_000);
    await limiter.unlock(key);
    expect(await limiter.lockRemaining(key)).toBe(0);
    expect(await limiter.lockedFor(key)).toBe(0);
    // The failures went too: one more does not lock, a second (maxFailures) does, for LOGIN_LOCK and not twice it.
    expect(await limiter.fail(key)).toBe(0);
    expect(await limiter.fail(key)).toBe(60_000);
  });

  test('without an unlock, the next lock within a day doubles', async () => {
    const key = `repeat-${name}@example.test`;
    expect(await lock(key)).toBe(60_000);
    await limiter.reset(key); // a success clears the failures, not the lock record
    expect(await lock(key)).toBe(120_000);
  });
});
