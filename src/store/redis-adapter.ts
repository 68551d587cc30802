/**
 * oidc-provider's storage contract on Redis (ioredis), for the short-lived, high-churn models.
 *
 * Key layout, every key under the configured prefix P and the model name M:
 *
 *   P M:record:<key>           hash { payload: <json>, consumed?: <epoch seconds> }   the record itself
 *   P M:grant:<grantId>        sorted set of record keys, scored by their expiry (ms) for revokeByGrantId
 *   P M:uid:<uid>              string → key                                           Session, for findByUid
 *   P M:account:<accountId>    sorted set of record keys, scored by expiry (ms)       Session, for findByAccount
 *   P M:userCode:<userCode>    string → key                                           DeviceCode, for findByUserCode
 *
 * <key> is the SHA-256 of the record's id (./storage-id.ts): ids are token values and never stored as such.
 *
 * Every key is given its TTL by the same atomic step that writes it (a Lua script, or SET … PX), so no key can
 * outlive its purpose. Records live for `expiresIn` plus the clock tolerance, so a just-expired record is still
 * found and the library can answer "expired" rather than "not found". The grant index expires with its
 * longest-lived member and sheds expired members whenever one is added.
 *
 * Redis Cluster: each script touches exactly one key, so no script can cross hash slots, and the steps that span
 * keys (index, record, pointers) are separate commands, never MULTI or a multi-key pipeline. The order makes the
 * gaps harmless: a record joins its grant index before it is written (sent first on the same connection; on a
 * Cluster, where the two keys can live on different nodes, the index is awaited first), so revocation never
 * misses it; a pointer whose record is gone simply finds nothing. The record id is the only thing `find` knows,
 * so a record's key cannot carry its grant id as a hash tag; with single-key scripts it does not need to.
 *
 * Access-token and client-credentials records may also be kept in process after a read; their deletions are
 * announced to every instance (./token-record-cache.ts).
 *
 * The `:record:` / `:grant:` segments keep ids from reaching other kinds of keys: an id of "grant:x" from a
 * request is looked up as `M:record:grant:x`, never as an index.
 */
import type { Result } from 'ioredis';
import { type Adapter, type AdapterPayload, errors } from 'oidc-provider';
import { CLOCK_TOLERANCE_SECONDS } from './sql-adapter.js';
import type { RedisClient } from './redis.js';
import { payloadFromStore, payloadToStore, storageId } from './storage-id.js';
import type { StoredRecord, TokenRecordCache } from './token-record-cache.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** Replaces a record and sets its TTL. */
    oidcWriteRecord(key: string, payload: string, consumed: string, ttlMs: number): Result<number, Context>;
    /** Writes a record and sets its TTL unless it exists: 1 when this call wrote it, else 0. */
    oidcClaimRecord(key: string, payload: string, ttlMs: number): Result<number, Context>;
    /** 1 when this call consumed the record; 0 when it was already consumed or does not exist. */
    oidcConsumeRecord(key: string): Result<number, Context>;
    /** Deletes a record, returning its payload (null when there was none). */
    oidcTakeRecord(key: string): Result<string | null, Context>;
    /** Adds an id to a grant index and stretches the index's TTL to its longest-lived member. */
    oidcIndexAdd(key: string, id: string, ttlMs: number): Result<number, Context>;
    /** Deletes a grant index, returning its members. */
    oidcIndexTake(key: string): Result<string[], Context>;
    /** Deletes a pointer only while it still points at the given id. */
    oidcDeletePointer(key: string, id: string): Result<number, Context>;
  }
}

const scripts = {
  oidcWriteRecord: `
    redis.call('DEL', KEYS[1])
    if ARGV[2] == '' then
      redis.call('HSET', KEYS[1], 'payload', ARGV[1])
    else
      redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'consumed', ARGV[2])
    end
    return redis.call('PEXPIRE', KEYS[1], ARGV[3])`,
  oidcClaimRecord: `
    if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
    redis.call('HSET', KEYS[1], 'payload', ARGV[1])
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])`,
  // HSETNX alone would recreate an expired record without a TTL; checking EXISTS first in the same script cannot.
  oidcConsumeRecord: `
    if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
    return redis.call('HSETNX', KEYS[1], 'consumed', redis.call('TIME')[1])`,
  oidcTakeRecord: `
    local payload = redis.call('HGET', KEYS[1], 'payload')
    redis.call('DEL', KEYS[1])
    return payload`,
  oidcIndexAdd: `
    local time = redis.call('TIME')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    return redis.call('PEXPIREAT', KEYS[1], last[2])`,
  oidcIndexTake: `
    local members = redis.call('ZRANGE', KEYS[1], 0, -1)
    redis.call('DEL', KEYS[1])
    return members`,
  oidcDeletePointer: `
    if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
    return 0`,
} as const;

const withScripts = new WeakSet<RedisClient>();

function defineScripts(redis: RedisClient): void {
  if (withScripts.has(redis)) return;
  for (const [name, lua] of Object.entries(scripts)) redis.defineCommand(name, { lua, numberOfKeys: 1 });
  withScripts.add(redis);
}

/** The `consumed` hash field: epoch seconds, or '' for not consumed. */
function consumedField(consumed: unknown): string {
  if (!consumed) return '';
  return String(typeof consumed === 'number' ? consumed : Math.floor(Date.now() / 1000));
}

/** The payload a stored record holds, with `consumed` when it was consumed. */
function payloadOf({ payload, consumed }: StoredRecord): AdapterPayload {
  const stored = JSON.parse(payload) as AdapterPayload;
  return consumed ? { ...stored, consumed: Number(consumed) } : stored;
}

/** When Redis lets the record go: its expiry plus the clock tolerance it is stored with (epoch ms). */
function expiresAtMs(payload: AdapterPayload): number {
  return typeof payload.exp === 'number' ? (payload.exp + CLOCK_TOLERANCE_SECONDS) * 1000 : Number.POSITIVE_INFINITY;
}

export class RedisAdapter implements Adapter {
  private readonly prefix: string;

  /** `cache`: copies of this model's records kept in process (./token-record-cache.ts; access tokens only). */
  constructor(
    private readonly model: string,
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly cache?: TokenRecordCache,
  ) {
    this.prefix = `${keyPrefix}${model}:`;
    defineScripts(redis);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const ttlMs = this.ttlMs(expiresIn);
    const { consumed, ...stored } = payload;

    const key = storageId(id);
    this.cache?.rewritten(this.recordKey(key));
    const indexed = [
      payload.grantId ? this.redis.oidcIndexAdd(this.grantKey(payload.grantId), key, ttlMs) : undefined,
      // A user's sessions are listed and ended one by one (admin API, CLI): index them by account too.
      this.model === 'Session' && payload.accountId ? this.redis.oidcIndexAdd(this.accountKey(payload.accountId), key, ttlMs) : undefined,
    ];
    // The record must join its indexes before it exists, so that a concurrent revocation cannot miss it. One server
    // runs one connection's commands in the order sent, so all go in one round trip; a Cluster may keep the index
    // and the record on different nodes, so there the indexes are awaited first. If a step fails the upsert
    // fails, and the provider never hands out the token whose record may be left behind.
    if (this.redis.isCluster) await Promise.all(indexed);
    await Promise.all([
      ...indexed,
      this.redis.oidcWriteRecord(this.recordKey(key), JSON.stringify(payloadToStore(this.model, id, stored)), consumedField(consumed), ttlMs),
      this.model === 'Session' && payload.uid ? this.redis.set(this.uidKey(payload.uid), key, 'PX', ttlMs) : undefined,
      payload.userCode ? this.redis.set(this.userCodeKey(payload.userCode), key, 'PX', ttlMs) : undefined,
    ]);
  }

  /**
   * Stores a record that no index or pointer leads to (ReplayDetection) unless it exists, in one step: of
   * concurrent calls exactly one gets true.
   */
  async claim(id: string, payload: AdapterPayload, expiresIn: number): Promise<boolean> {
    const stored = JSON.stringify(payloadToStore(this.model, id, payload));
    return (await this.redis.oidcClaimRecord(this.recordKey(storageId(id)), stored, this.ttlMs(expiresIn))) === 1;
  }

  /** How long Redis keeps a record that lives `expiresIn` seconds: that, plus the clock tolerance. */
  private ttlMs(expiresIn: number | undefined): number {
    if (typeof expiresIn !== 'number') {
      throw new Error(`${this.model} records never expire, so they cannot be kept in Redis: store ${this.model} in SQL`);
    }
    return Math.max(1, Math.ceil((expiresIn + CLOCK_TOLERANCE_SECONDS) * 1000));
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const payload = await this.findStored(storageId(id));
    return payload && payloadFromStore(this.model, id, payload);
  }

  /** Finds a record by its storage key (the hashed id that indexes and pointers hold). */
  private async findStored(key: string): Promise<AdapterPayload | undefined> {
    const recordKey = this.recordKey(key);
    const copy = this.cache?.get(recordKey);
    if (copy) return payloadOf(copy);
    const epoch = this.cache?.beforeRead();
    const [payload, consumed] = await this.redis.hmget(recordKey, 'payload', 'consumed');
    if (!payload) return undefined;
    const record = { payload, consumed };
    const stored = payloadOf(record);
    if (epoch !== undefined) this.cache?.keep(recordKey, record, epoch, expiresAtMs(stored));
    return stored;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findByPointer(this.uidKey(uid));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findByPointer(this.userCodeKey(userCode));
  }

  /** Atomic: of concurrent calls for one record exactly one succeeds; the others get invalid_grant. */
  async consume(id: string): Promise<void> {
    const recordKey = this.recordKey(storageId(id));
    const consumedNow = await this.redis.oidcConsumeRecord(recordKey);
    if (consumedNow !== 1) throw new errors.InvalidGrant('grant already consumed');
    await this.cache?.changed(recordKey);
  }

  async destroy(id: string): Promise<void> {
    const key = storageId(id);
    const payload = await this.takeRecord(key);
    if (payload?.grantId) await this.redis.zrem(this.grantKey(payload.grantId), key);
    if (this.model === 'Session' && payload?.accountId) await this.redis.zrem(this.accountKey(payload.accountId), key);
  }

  /** The live records of an account (Session only: the one model indexed by account). */
  async findByAccount(accountId: string): Promise<AdapterPayload[]> {
    const now = Date.now();
    const keys = await this.redis.zrangebyscore(this.accountKey(accountId), now, '+inf');
    const records = await Promise.all(keys.map((key) => this.findStored(key)));
    return records.filter((record): record is AdapterPayload => record !== undefined);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    // Taking the index first means a record added from now on starts a fresh index instead of a half-revoked one.
    const keys = await this.redis.oidcIndexTake(this.grantKey(grantId));
    await Promise.all(keys.map((key) => this.takeRecord(key)));
  }

  /** Deletes a record and the pointers that still lead to it; returns what it held. */
  private async takeRecord(key: string): Promise<AdapterPayload | undefined> {
    const recordKey = this.recordKey(key);
    const stored = await this.redis.oidcTakeRecord(recordKey);
    // Announced even when there was nothing to delete: a revocation retried after an announcement failed still
    // reaches the instances that keep a copy.
    await this.cache?.changed(recordKey);
    if (!stored) return undefined;
    const payload = JSON.parse(stored) as AdapterPayload;
    await Promise.all([
      payload.uid ? this.redis.oidcDeletePointer(this.uidKey(payload.uid), key) : undefined,
      payload.userCode ? this.redis.oidcDeletePointer(this.userCodeKey(payload.userCode), key) : undefined,
    ]);
    return payload;
  }

  private async findByPointer(pointerKey: string): Promise<AdapterPayload | undefined> {
    const key = await this.redis.get(pointerKey);
    return key ? this.findStored(key) : undefined;
  }

  private recordKey(key: string) {
    return `${this.prefix}record:${key}`;
  }
  private accountKey(accountId: string) {
    return `${this.prefix}account:${accountId}`;
  }
  private grantKey(grantId: string) {
    return `${this.prefix}grant:${grantId}`;
  }
  private uidKey(uid: string) {
    return `${this.prefix}uid:${uid}`;
  }
  private userCodeKey(userCode: string) {
    return `${this.prefix}userCode:${userCode}`;
  }
}
