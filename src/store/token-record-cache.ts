/**
 * Opaque access-token and client-credentials records, kept in process memory after their first read from Redis.
 *
 * Why: a resource server introspects the same token, or calls userinfo with it, on every request it serves, and
 * each such lookup was a Redis round trip: 13 µs of the main thread's CPU and 2–3 µs of Redis's per lookup,
 * against 2–4 µs for a kept copy (`npx tsx bench/token-lookup.ts`, bench/FINDINGS.md), and the wait for the
 * answer. These two models are written once, when the token is issued
 * (oidc-provider saves them nowhere else), and afterwards only deleted (revocation, a revoked grant) or left to
 * expire, so a copy stays right until one of those happens:
 * - expiry: a copy is kept no longer than the record lives in Redis (its `exp` plus the clock tolerance);
 * - deletion: the instance that deletes a record announces its key on a Redis broadcast (./broadcast.ts), and
 *   every instance drops its copy when the message arrives, within milliseconds. A copy is kept only while that
 *   broadcast is live, and every copy is dropped when it stops (a missed message cannot leave one behind), and a
 *   record read while any announcement arrived is not kept (it may predate the deletion announced).
 * - anything else (a key deleted by hand, a Redis that lost its data): at most TOKEN_CACHE_TTL_MS.
 *
 * Revocation is therefore seen everywhere after the message's delivery rather than at once, which RFC 7009 §2.2
 * allows; a grant revoked in PostgreSQL is seen at once, because introspection and userinfo still read the grant.
 * TOKEN_CACHE_TTL_MS=0 or TOKEN_CACHE_MAX_ENTRIES=0 turns keeping copies off; deletions are still announced, for
 * the instances that keep them.
 */
import { LRUCache } from 'lru-cache';
import type { RedisBroadcast } from './broadcast.js';

/** The models whose records are kept: the opaque tokens that resource servers present. */
export const CACHED_MODELS: ReadonlySet<string> = new Set(['AccessToken', 'ClientCredentials']);

/** A record as Redis holds it: the payload's JSON and the `consumed` field. */
export interface StoredRecord {
  payload: string;
  consumed?: string | null;
}

/** What an operator watches: how often a lookup was answered from memory, and whether copies can be kept at all. */
export interface TokenRecordCacheStats {
  /** Lookups answered from a kept copy, since the process started. */
  hits: number;
  /** Lookups that went to Redis while keeping was configured (a copy not yet kept, dropped or expired). */
  misses: number;
  /** Copies kept now. */
  entries: number;
  /** Whether the deletion broadcast is live, so that new copies are kept (false also when keeping is off). */
  live: boolean;
}

export interface TokenRecordCacheOptions {
  /** Most copies kept per process; 0: none. */
  maxEntries: number;
  /** Longest a copy is kept, whatever the record's own lifetime; 0: none. */
  ttlMs: number;
}

export class TokenRecordCache {
  readonly #copies?: LRUCache<string, StoredRecord>;
  readonly #ttlMs: number;
  #hits = 0;
  #misses = 0;

  constructor(
    private readonly broadcast: RedisBroadcast,
    options: TokenRecordCacheOptions,
  ) {
    this.#ttlMs = options.ttlMs;
    if (options.maxEntries > 0 && options.ttlMs > 0) {
      const copies = new LRUCache<string, StoredRecord>({ max: options.maxEntries, ttl: options.ttlMs });
      broadcast.listen(
        (key) => copies.delete(key),
        () => copies.clear(),
      );
      this.#copies = copies;
    }
  }

  /** The copy of the record under `key`, if one is kept. */
  get(key: string): StoredRecord | undefined {
    if (!this.#copies) return undefined;
    const copy = this.#copies.get(key);
    if (copy) this.#hits++;
    else this.#misses++;
    return copy;
  }

  get stats(): TokenRecordCacheStats {
    const live = this.#copies !== undefined && this.broadcast.live;
    return { hits: this.#hits, misses: this.#misses, entries: this.#copies?.size ?? 0, live };
  }

  /**
   * Called before reading a record from Redis; what it returns goes to `keep` with the answer. Undefined when no
   * copies are kept. The first call subscribes to the broadcast.
   */
  beforeRead(): number | undefined {
    if (!this.#copies) return undefined;
    this.broadcast.start();
    return this.broadcast.epoch;
  }

  /**
   * Keeps a copy of what a read returned, until `expiresAtMs` (epoch ms) at the latest, unless the broadcast is
   * not live or anything was announced since `beforeRead` returned `epoch`.
   */
  keep(key: string, record: StoredRecord, epoch: number, expiresAtMs: number): void {
    if (!this.#copies || !this.broadcast.live || this.broadcast.epoch !== epoch) return;
    const ttl = Math.min(this.#ttlMs, expiresAtMs - Date.now());
    if (ttl > 0) this.#copies.set(key, record, { ttl });
  }

  /** After the record under `key` was deleted or consumed in Redis: every instance drops its copy. */
  async changed(key: string): Promise<void> {
    this.#copies?.delete(key);
    await this.broadcast.publish(key);
  }

  /**
   * Drops this instance's copy of a record written again. oidc-provider writes these models once, under a new
   * id, so no other instance can hold a copy; a rewrite is not announced.
   */
  rewritten(key: string): void {
    this.#copies?.delete(key);
  }

  /** Ends the broadcast's subscription. */
  close(): void {
    this.broadcast.close();
  }
}
