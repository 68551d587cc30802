/**
 * SQL has no native TTL, so expired rows of `oidc_models` are deleted by a periodic job. Finds already treat
 * them as absent; pruning only keeps the table (and its indexes) from growing without bound.
 */
import type { Logger } from '../logger.js';
import { type Database, isEmbedded } from './database.js';
import { CLOCK_TOLERANCE_SECONDS } from './sql-adapter.js';

/** Rows deleted per statement: small enough that no delete holds locks or bloats WAL for long. */
const DEFAULT_BATCH_SIZE = 1000;

/** pg_try_advisory_lock key held while pruning, so that of many instances only one prunes at a time. */
export const PRUNE_LOCK_KEY = 72_711_300_001;

/**
 * Deletes the rows that expired longer ago than the clock tolerance, batch by batch, until none are left.
 * Returns how many rows were deleted.
 */
export async function pruneExpired(db: Database, options: { batchSize?: number } = {}): Promise<number> {
  return deleteExpiredInBatches(db, options.batchSize ?? DEFAULT_BATCH_SIZE);
}

/**
 * Prunes unless another instance is pruning right now. On Postgres the advisory lock is held on one pinned
 * connection, which also runs the deletes: session-level locks belong to a connection, not to the pool, and
 * needing no second connection keeps this working with a pool of one. An embedded PGlite has a single process,
 * so it just prunes. Returns the rows deleted, or undefined when another instance held the lock.
 */
export async function pruneUnlessBusy(db: Database, options: { batchSize?: number } = {}): Promise<number | undefined> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (isEmbedded(db)) return deleteExpiredInBatches(db, batchSize);
  const connection = await db.client.acquireConnection();
  try {
    const [row] = await db.select(db.raw('pg_try_advisory_lock(?) as locked', [PRUNE_LOCK_KEY])).connection(connection);
    if (!row?.locked) return undefined;
    try {
      return await deleteExpiredInBatches(db, batchSize, connection);
    } finally {
      await db.select(db.raw('pg_advisory_unlock(?)', [PRUNE_LOCK_KEY])).connection(connection);
    }
  } finally {
    await db.client.releaseConnection(connection);
  }
}

/** `connection`: a connection taken from the pool to run on, rather than any pooled one. */
async function deleteExpiredInBatches(db: Database, batchSize: number, connection?: unknown): Promise<number> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  let total = 0;
  for (;;) {
    const expired = db('oidc_models')
      .select('model', 'id')
      .where('expires_at', '<', db.raw(`now() - ? * interval '1 second'`, [CLOCK_TOLERANCE_SECONDS]))
      .limit(batchSize);
    // By primary key rather than ctid, so it also works on Postgres-compatible stores without ctid.
    const batch = db('oidc_models').whereIn(['model', 'id'], expired).del();
    const deleted = deletedCount(await (connection ? batch.connection(connection) : batch));
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
export function schedulePruning(db: Database, intervalSeconds: number, logger: Logger): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return; // the previous run is still going; skip rather than pile up
    running = pruneUnlessBusy(db)
      .then((deleted) => {
        if (deleted === undefined) logger.debug('pruning skipped: another instance is pruning');
        else if (deleted > 0) logger.info({ deleted }, 'pruned expired oidc-provider records');
        else logger.debug('pruning found no expired oidc-provider records');
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
