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
import type { LockBroadcast } from './lock-broadcast.js';

export interface LimiterStore {
  redis?: RedisClient;
  redisKeyPrefix?: string;
  db: Database;
  /** With Redis: announces locks to every instance, so that "not locked" may be believed longer. */
  broadcast?: LockBroadcast;
}

export interface FailureLimiterOptions {
  /** Distinguishes this limiter's keys from the others'. */
  name: string;
  /** Failures in the window that lock the key: the one that reaches this number imposes the lock. */
  maxFailures: number;
  windowSeconds: number;
  lockSeconds: number;
  maxLockSeconds: number;
}

const DAY = 24 * 3600;

/** Keys are hashed-free but bounded: emails and IPs are short, anything longer is cut. */
const keyOf = (key: string) => key.slice(0, 200);

/** A rate-limiter-flexible limiter on Redis when there is one (shared by every instance), else on the SQL database. */
export function createLimiter(store: LimiterStore, keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
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
 * another instance within this time, or, while the lock broadcast is live (./lock-broadcast.ts), as soon as its
 * announcement arrives, which lets the belief last longer.
 */
const UNLOCKED_CACHE_MS = 1000;
const UNLOCKED_CACHE_MS_WITH_BROADCAST = 60_000;

/**
 * With Redis, a lock is also a key of its own that lives exactly as long as the lock, so that the check made
 * before every client authentication and sign-in is one PTTL. The rate limiter's own `get` is a MULTI of GET
 * and PTTL: about 50 µs of a worker's CPU per check against 14 for a PTTL (ioredis, local Redis, 16 in flight),
 * and with many clients each is checked again once its "unlocked" entry above has lapsed.
 */
class RedisLocks {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /** Milliseconds the lock has left, or 0. */
  async remaining(key: string): Promise<number> {
    const ms = await this.redis.pttl(this.prefix + key);
    return Math.max(ms, 0);
  }

  async lock(key: string, ms: number): Promise<void> {
    await this.redis.set(this.prefix + key, '1', 'PX', ms);
  }

  async unlock(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }
}

export class FailureLimiter {
  readonly #failures: RateLimiterAbstract;
  readonly #knownUnlocked = new LRUCache<string, true>({ max: 10_000, ttl: UNLOCKED_CACHE_MS });
  readonly #broadcast?: LockBroadcast;
  /** How many times the key was locked in the last day, to double the next lock. */
  readonly #locks: RateLimiterAbstract;
  readonly #redisLocks?: RedisLocks;

  constructor(
    store: LimiterStore,
    private readonly options: FailureLimiterOptions,
  ) {
    this.#failures = createLimiter(store, `${options.name}:fail`, options.maxFailures, options.windowSeconds);
    this.#locks = createLimiter(store, `${options.name}:locks`, 1_000_000, DAY);
    if (store.redis) this.#redisLocks = new RedisLocks(store.redis, `${store.redisKeyPrefix ?? ''}limit:${options.name}:locked:`);
    if (store.broadcast) {
      this.#broadcast = store.broadcast;
      this.#broadcast.listen(
        (limiter, key) => {
          if (limiter === options.name) this.#knownUnlocked.delete(key);
        },
        () => this.#knownUnlocked.clear(),
      );
    }
  }

  /** Milliseconds until the key may try again, or 0 when it is not locked. */
  async lockedFor(key: string): Promise<number> {
    if (this.#knownUnlocked.has(keyOf(key))) return 0;
    this.#broadcast?.start();
    const epoch = this.#broadcast?.epoch;
    const locked = await this.lockRemaining(key);
    if (locked === 0) {
      // Long only if no announcement (or change of subscription) came while the answer was on its way.
      const long = this.#broadcast?.live && this.#broadcast.epoch === epoch;
      this.#knownUnlocked.set(keyOf(key), true, { ttl: long ? UNLOCKED_CACHE_MS_WITH_BROADCAST : UNLOCKED_CACHE_MS });
    }
    return locked;
  }

  /**
   * The lock's remaining milliseconds as the store has it, without this process's belief or the broadcast (for
   * an administrator's view, and the CLI, which keeps no subscription).
   */
  async lockRemaining(key: string): Promise<number> {
    return this.#redisLocks ? this.#redisLocks.remaining(keyOf(key)) : this.#lockedInStore(key);
  }

  async #lockedInStore(key: string): Promise<number> {
    const state = await this.#failures.get(keyOf(key));
    return state && state.consumedPoints >= this.options.maxFailures ? Math.max(state.msBeforeNext, 1) : 0;
  }

  /** Records a failure; resolves to the lock imposed by it in milliseconds, or 0. */
  async fail(key: string): Promise<number> {
    this.#knownUnlocked.delete(keyOf(key));
    const failures = await this.#failures.consume(keyOf(key)).then(
      (result) => result.consumedPoints,
      (rejection: unknown) => {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        return rejection.consumedPoints;
      },
    );
    // The maxFailures-th failure imposes the lock: with LOGIN_MAX_FAILURES=5 the fifth wrong password locks the
    // account, and the attempt after it is refused even with the right one.
    if (failures < this.options.maxFailures) return 0;
    const repeat = await this.#locks.consume(keyOf(key)).then(
      (result) => result.consumedPoints,
      () => 64,
    );
    const seconds = Math.min(this.options.lockSeconds * 2 ** Math.min(repeat - 1, 20), this.options.maxLockSeconds);
    await Promise.all([this.#failures.block(keyOf(key), seconds), this.#redisLocks?.lock(keyOf(key), seconds * 1000)]);
    // After the lock is stored, so that an instance that hears of it and asks finds it.
    await this.#broadcast?.announce(this.options.name, keyOf(key)).catch(() => {});
    return seconds * 1000;
  }

  /** Forgets the failures (a success); earlier locks still make the next one longer. */
  async reset(key: string): Promise<void> {
    await this.#failures.delete(keyOf(key));
  }

  /**
   * Lifts the key's lock and forgets its failures and earlier locks, so that a lock after this starts at
   * LOGIN_LOCK again. Every instance sees it at its next check: a locked key is never believed unlocked from
   * memory, so none holds a belief to correct.
   */
  async unlock(key: string): Promise<void> {
    await Promise.all([this.#failures.delete(keyOf(key)), this.#locks.delete(keyOf(key)), this.#redisLocks?.unlock(keyOf(key))]);
  }
}

/** "3 minutes", "1 hour" for messages that say when to retry. */
export function describeWait(ms: number): string {
  const minutes = Math.ceil(ms / 60_000);
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.ceil(minutes / 60);
  return `${hours} hour${hours === 1 ? '' : 's'}`;
}
