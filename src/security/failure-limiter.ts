/**
 * Counts failures (wrong passwords, failed client authentication) per key and locks the key when there are too
 * many, with a lock that doubles each time it is imposed again within a day. Built on rate-limiter-flexible:
 * Redis when configured (shared by every instance), otherwise the SQL database, so limits hold across workers
 * and restarts either way.
 */
import { LRUCache } from 'lru-cache';
import { type RateLimiterAbstract, RateLimiterPostgres, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Database } from '../store/database.js';
import type { RedisClient } from '../store/redis.js';

export interface LimiterStore {
  redis?: RedisClient;
  redisKeyPrefix?: string;
  db: Database;
}

export interface FailureLimiterOptions {
  /** Distinguishes this limiter's keys from the others'. */
  name: string;
  /** Failures allowed in the window; the next one locks. */
  maxFailures: number;
  windowSeconds: number;
  lockSeconds: number;
  maxLockSeconds: number;
}

const DAY = 24 * 3600;

/** Keys are hashed-free but bounded: emails and IPs are short, anything longer is cut. */
const keyOf = (key: string) => key.slice(0, 200);

function createLimiter(store: LimiterStore, keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
  if (store.redis) {
    return new RateLimiterRedis({ storeClient: store.redis, keyPrefix: `${store.redisKeyPrefix ?? ''}limit:${keyPrefix}`, points, duration });
  }
  return new RateLimiterPostgres({
    storeClient: sqlClientFor(store.db),
    storeType: 'client',
    tableName: 'rate_limits',
    tableCreated: true, // by our migration
    keyPrefix,
    points,
    duration,
    clearExpiredByTimeout: true,
  });
}

/**
 * The limiter speaks node-postgres (`query({ text, values })`). Both of our drivers (pg, PGlite) take
 * `query(text, values)` on a raw connection, so each query borrows one from knex's pool: the same pool, search
 * path and schema as everything else.
 */
function sqlClientFor(db: Database) {
  return {
    async query(query: { text: string; values?: unknown[] }) {
      const connection = await db.client.acquireConnection();
      try {
        return await connection.query(query.text, query.values);
      } finally {
        await db.client.releaseConnection(connection);
      }
    },
  };
}

/**
 * How long "this key is not locked" is believed without asking the store again. Checking is on the path of
 * every token request; a lock imposed by this process is seen at once (fail() forgets the key), one imposed by
 * another instance within this time.
 */
const UNLOCKED_CACHE_MS = 1000;

export class FailureLimiter {
  readonly #failures: RateLimiterAbstract;
  readonly #knownUnlocked = new LRUCache<string, true>({ max: 10_000, ttl: UNLOCKED_CACHE_MS });
  /** How many times the key was locked in the last day, to double the next lock. */
  readonly #locks: RateLimiterAbstract;

  constructor(
    store: LimiterStore,
    private readonly options: FailureLimiterOptions,
  ) {
    this.#failures = createLimiter(store, `${options.name}:fail`, options.maxFailures, options.windowSeconds);
    this.#locks = createLimiter(store, `${options.name}:locks`, 1_000_000, DAY);
  }

  /** Milliseconds until the key may try again, or 0 when it is not locked. */
  async lockedFor(key: string): Promise<number> {
    if (this.#knownUnlocked.has(keyOf(key))) return 0;
    const state = await this.#failures.get(keyOf(key));
    const locked = state && state.consumedPoints > this.options.maxFailures ? Math.max(state.msBeforeNext, 1) : 0;
    if (locked === 0) this.#knownUnlocked.set(keyOf(key), true);
    return locked;
  }

  /** Records a failure; resolves to the lock imposed by it in milliseconds, or 0. */
  async fail(key: string): Promise<number> {
    this.#knownUnlocked.delete(keyOf(key));
    try {
      await this.#failures.consume(keyOf(key));
      return 0;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const repeat = await this.#locks.consume(keyOf(key)).then(
        (result) => result.consumedPoints,
        () => 64,
      );
      const seconds = Math.min(this.options.lockSeconds * 2 ** Math.min(repeat - 1, 20), this.options.maxLockSeconds);
      await this.#failures.block(keyOf(key), seconds);
      return seconds * 1000;
    }
  }

  /** Forgets the failures (a success); earlier locks still make the next one longer. */
  async reset(key: string): Promise<void> {
    await this.#failures.delete(keyOf(key));
  }
}

/** "3 minutes", "1 hour" for messages that say when to retry. */
export function describeWait(ms: number): string {
  const minutes = Math.ceil(ms / 60_000);
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.ceil(minutes / 60);
  return `${hours} hour${hours === 1 ? '' : 's'}`;
}
