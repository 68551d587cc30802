/**
 * Which store keeps which oidc-provider model (design §3). Durable, revocation-critical records (consent grants,
 * refresh tokens, registration tokens) stay in SQL, so a Redis flush never logs users out of their apps or forces
 * them to consent again. Everything short-lived goes to Redis when there is one, else to SQL as well.
 */
import type { Adapter } from 'oidc-provider';
import type { SessionStore } from '../accounts/sessions.js';
import { LENGTH_TYPED_MODELS, mayBeTokenOf } from '../oidc/opaque-tokens.js';
import { type Database, isEmbedded } from './database.js';
import { translatingStoreErrors } from './outages.js';
import { RedisAdapter } from './redis-adapter.js';
import { type RefreshGraceOptions, RefreshTokenAdapter } from './refresh-token-adapter.js';
import { SqlAdapter } from './sql-adapter.js';
import type { RedisClient } from './redis.js';
import { CACHED_MODELS, type TokenRecordCache } from './token-record-cache.js';

/** Models always kept in SQL (besides `Client`, which is served from our clients table). */
export const SQL_MODELS: ReadonlySet<string> = new Set(['Grant', 'RefreshToken', 'InitialAccessToken', 'RegistrationAccessToken']);

/** The methods of oidc-provider's adapter contract. */
export const ADAPTER_OPERATIONS = ['upsert', 'find', 'findByUid', 'findByUserCode', 'consume', 'destroy', 'revokeByGrantId'] as const;

export interface AdapterFactoryOptions {
  db: Database;
  /** Where short-lived models go; without it they go to SQL too. */
  redis?: RedisClient;
  /** Prefix of every Redis key; 'authz:' when unset. */
  redisKeyPrefix?: string;
  /** The read-only `Client` adapter over our clients table. */
  clientAdapter: (name: string) => Adapter;
  /** The grace window for re-presenting a just-rotated refresh token (0: none). */
  refreshGrace?: RefreshGraceOptions;
  /** Copies of access-token records kept in process, and their deletions announced (./token-record-cache.ts). */
  tokenCache?: TokenRecordCache;
  /** Wraps each adapter (metrics), told which store it is: `postgres`, `pglite` or `redis`. */
  instrument?: (adapter: Adapter, store: string) => Adapter;
}

/** The provider's `adapter` option: one adapter per model name, created on first use and reused. */
export function createAdapterFactory(options: AdapterFactoryOptions): (name: string) => Adapter {
  const { db, redis, redisKeyPrefix = 'authz:', clientAdapter, refreshGrace = { graceSeconds: 0 }, tokenCache, instrument } = options;
  const sqlStore = isEmbedded(db) ? 'pglite' : 'postgres';
  const measured = (adapter: Adapter, store: string) => (instrument ? instrument(adapter, store) : adapter);
  const adapters = new Map<string, Adapter>();
  const create = (name: string): Adapter => {
    if (name === 'Client') return clientAdapter(name);
    if (name === 'RefreshToken') return measured(new RefreshTokenAdapter(db, refreshGrace), sqlStore);
    if (SQL_MODELS.has(name) || !redis) return measured(claimingReplays(name, new SqlAdapter(name, db)), sqlStore);
    const cache = CACHED_MODELS.has(name) ? tokenCache : undefined;
    return measured(claimingReplays(name, new RedisAdapter(name, redis, redisKeyPrefix, cache)), 'redis');
  };
  return (name) => {
    let adapter = adapters.get(name);
    if (!adapter) {
      // An unreachable store answers 503 temporarily_unavailable, not 500 (src/store/outages.ts).
      adapter = translatingStoreErrors(skippingOtherKinds(name, create(name)), ADAPTER_OPERATIONS);
      adapters.set(name, adapter);
    }
    return adapter;
  };
}

/** The store the provider keeps sessions in, for listing and ending a user's sessions (src/accounts/sessions.ts). */
export function sessionStore(options: Pick<AdapterFactoryOptions, 'db' | 'redis' | 'redisKeyPrefix'>): SessionStore {
  const factory = createAdapterFactory({
    ...options,
    clientAdapter: () => {
      throw new Error('not a client store');
    },
  });
  return factory('Session') as SessionStore;
}

/** How long a jti claimed by `find` stays seen if the `upsert` that should follow never comes (a DPoP proof's window). */
const REPLAY_CLAIM_SECONDS = 300;

/**
 * ReplayDetection (each DPoP proof's and client assertion's jti is accepted once): oidc-provider's `unique` asks
 * `find` whether the jti was seen and, if not, records it with `upsert`. Requests carrying the same proof at the
 * same moment all passed the `find` before any `upsert` (five at once got five tokens), so here `find` records
 * the jti itself, in one atomic step of the store: the first caller is told "not seen", every other "seen", and
 * the library refuses them with its own error for the endpoint. The `upsert` that follows rewrites the record
 * with its real lifetime.
 */
function claimingReplays(model: string, adapter: SqlAdapter | RedisAdapter): Adapter {
  if (model !== 'ReplayDetection') return adapter;
  const claiming = Object.create(adapter) as Adapter;
  claiming.find = async (id) => {
    const now = Math.floor(Date.now() / 1000);
    const seen = { jti: id, kind: model, iat: now, exp: now + REPLAY_CLAIM_SECONDS };
    if (await adapter.claim(id, seen, REPLAY_CLAIM_SECONDS)) return undefined;
    return (await adapter.find(id)) ?? seen;
  };
  return claiming;
}

/** Answers `find` for an id shaped like another model's token without a round trip (src/oidc/opaque-tokens.ts). */
function skippingOtherKinds(model: string, adapter: Adapter): Adapter {
  if (!LENGTH_TYPED_MODELS.has(model)) return adapter;
  const filtered = Object.create(adapter) as Adapter;
  filtered.find = async (id) => (mayBeTokenOf(model, id) ? adapter.find(id) : undefined);
  return filtered;
}
