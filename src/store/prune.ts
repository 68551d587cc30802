/**
 * SQL has no native TTL, so a periodic job deletes what has had its time: expired rows of `oidc_models` (finds
 * already treat them as absent; pruning keeps the table and its indexes from growing without bound) and of
 * `email_links`, and audit events older than AUDIT_RETENTION (one per token issued: at a thousand tokens a second, 86 million rows a day).
 */
import type { Logger } from '../logger.js';
import { type Database, isEmbedded } from './database.js';
import { CLOCK_TOLERANCE_SECONDS } from './sql-adapter.js';

/** Rows deleted per statement: small enough that no delete holds locks or bloats WAL for long. */
const DEFAULT_BATCH_SIZE = 1000;

/** pg_try_advisory_lock key held while pruning, so that of many instances only one prunes at a time. */
export const PRUNE_LOCK_KEY = 72_711_300_001;

export interface PruneOptions {
  batchSize?: number;
  /** Audit events older than this many seconds are deleted; 0 or unset: kept forever. */
  auditRetentionSeconds?: number;
}

/** Rows deleted by one pruning run. */
export interface Pruned {
  /** Expired oidc-provider records. */
  records: number;
  /** Audit events past their retention. */
  auditEvents: number;
  /** Expired links sent by mail (password reset, email confirmation). */
  emailLinks: number;
}

/**
 * Deletes the rows that expired longer ago than the clock tolerance, batch by batch, until none are left.
 * Returns how many rows were deleted.
 */
export async function pruneExpired(db: Database, options: { batchSize?: number } = {}): Promise<number> {
  return deleteInBatches(expiredRecords(db), options.batchSize ?? DEFAULT_BATCH_SIZE);
}

/**
 * Prunes unless another instance is pruning right now. On Postgres the advisory lock is held on one pinned
 * connection, which also runs the deletes: session-level locks belong to a connection, not to the pool, and
 * needing no second connection keeps this working with a pool of one. An embedded PGlite has a single process,
 * so it just prunes. Returns the rows deleted, or undefined when another instance held the lock.
 */
export async function pruneUnlessBusy(db: Database, options: PruneOptions = {}): Promise<Pruned | undefined> {
  if (isEmbedded(db)) return pruneAll(db, options);
  const connection = await db.client.acquireConnection();
  try {
    const [row] = await db.select(db.raw('pg_try_advisory_lock(?) as locked', [PRUNE_LOCK_KEY])).connection(connection);
    if (!row?.locked) return undefined;
    try {
      return await pruneAll(db, options, connection);
    } finally {
      await db.select(db.raw('pg_advisory_unlock(?)', [PRUNE_LOCK_KEY])).connection(connection);
    }
  } finally {
    await db.client.releaseConnection(connection);
  }
}

/** `connection`: a connection taken from the pool to run on, rather than any pooled one. */
async function pruneAll(db: Database, options: PruneOptions, connection?: unknown): Promise<Pruned> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const records = await deleteInBatches(expiredRecords(db), batchSize, connection);
  const retention = options.auditRetentionSeconds ?? 0;
  const auditEvents = retention > 0 ? await deleteInBatches(auditEventsOlderThan(db, retention), batchSize, connection) : 0;
  const emailLinks = await deleteInBatches(expiredEmailLinks(db), batchSize, connection);
  return { records, auditEvents, emailLinks };
}

/** A statement that deletes up to `limit` rows of one kind. */
type BatchDelete = (limit: number) => ReturnType<Database['queryBuilder']>;

const expiredRecords = (db: Database): BatchDelete => (limit) => {
  const expired = db('oidc_models')
    .select('model', 'id')
    .where('expires_at', '<', db.raw(`now() - ? * interval '1 second'`, [CLOCK_TOLERANCE_SECONDS]))
    .limit(limit);
  // By primary key rather than ctid, so it also works on Postgres-compatible stores without ctid.
  return db('oidc_models').whereIn(['model', 'id'], expired).del();
};

/** Oldest first, found through the index on `at`. */
const auditEventsOlderThan = (db: Database, seconds: number): BatchDelete => (limit) => {
  const old = db('audit_events').select('id').where('at', '<', db.raw(`now() - ? * interval '1 second'`, [seconds])).limit(limit);
  return db('audit_events').whereIn('id', old).del();
};

const expiredEmailLinks = (db: Database): BatchDelete => (limit) => {
  const expired = db('email_links').select('token_hash').where('expires_at', '<', db.fn.now()).limit(limit);
  return db('email_links').whereIn('token_hash', expired).del();
};

/** Runs `batch` until it deletes fewer than `batchSize` rows; returns how many went in all. */
async function deleteInBatches(batch: BatchDelete, batchSize: number, connection?: unknown): Promise<number> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  let total = 0;
  for (;;) {
    const statement = batch(batchSize);
    const deleted = deletedCount(await (connection ? statement.connection(connection) : statement));
    total += deleted;
    if (deleted < batchSize) return total;
  }
}

/** pg reports a delete as its row count; knex-pglite passes on the result object, which carries rowCount. */
function deletedCount(result: unknown): number {
  return typeof result === 'number' ? result : Number((result as { rowCount?: number | null }).rowCount ?? 0);
}

/**
 * Prunes every `intervalSeconds` in the background (the timer never keeps the process alive). Failures are
 * logged and retried at the next tick; they never reach the caller.
 */
export function schedulePruning(
  db: Database,
  intervalSeconds: number,
  logger: Logger,
  options: Pick<PruneOptions, 'auditRetentionSeconds'> & {
    /**
     * Runs after each pruning run this instance made (not under its lock, which holds one connection: this may
     * need others); returns what it removed, to log (src/client-registration/unused-registrations.ts).
     */
    removeUnused?: () => Promise<{ what: string; ids: string[] }>;
  } = {},
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return; // the previous run is still going; skip rather than pile up
    running = pruneUnlessBusy(db, options)
      .then(async (pruned) => {
        if (pruned === undefined) return logger.debug('pruning skipped: another instance is pruning');
        if (pruned.records > 0) logger.info({ deleted: pruned.records }, 'pruned expired oidc-provider records');
        else logger.debug('pruning found no expired oidc-provider records');
        if (pruned.emailLinks > 0) logger.info({ deleted: pruned.emailLinks }, 'pruned expired email links');
        if (pruned.auditEvents > 0) logger.info({ deleted: pruned.auditEvents }, 'pruned audit events older than AUDIT_RETENTION');
        const unused = await options.removeUnused?.();
        if (unused && unused.ids.length > 0) logger.info({ removed: unused.ids }, `removed ${unused.what}`);
      })
      .catch((error: unknown) => logger.error({ err: error }, 'pruning expired oidc-provider records failed'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, intervalSeconds * 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
