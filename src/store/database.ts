/**
 * The SQL database handle: PostgreSQL through knex + pg when DATABASE_URL is set, embedded PGlite otherwise.
 * Both speak the same SQL, so everything above this file is written once against knex.
 */
import { mkdir } from 'node:fs/promises';
import type { Socket } from 'node:net';
import knexFactory, { type Knex } from 'knex';
import { migrationSource } from '../../migrations/index.js';
import type { Logger } from '../logger.js';
import { lockEmbeddedDatabase } from './embedded-lock.js';

export type Database = Knex;

export interface DatabaseOptions {
  /** postgres:// URL; unset means embedded PGlite. */
  url?: string;
  /** Schema for every table (created when missing); Postgres only. */
  schema?: string;
  poolMax?: number;
  /** Named prepared statements on PostgreSQL (default true; src/store/prepared-statements.ts). */
  preparedStatements?: boolean;
  /** PostgreSQL's `statement_timeout` for every query, and the silence after which a connection counts as lost. */
  queryTimeoutSeconds?: number;
  /** PGlite data folder, or ':memory:' for a throw-away database. */
  embeddedDir: string;
}

export const isEmbedded = (db: Database) => db.client.config.client !== 'pg';

/** PostgreSQL's unique_violation (23505): a row with the same key exists; the caller's conflict, not a bug. */
export const isUniqueViolation = (error: unknown) => (error as { code?: string } | undefined)?.code === '23505';

const withoutPreparedStatements = new WeakSet<Database>();

/** Whether the request-path statements run as named prepared statements (PostgreSQL, unless turned off). */
export const usesPreparedStatements = (db: Database) => !isEmbedded(db) && !withoutPreparedStatements.has(db);

/** Loaded only for the embedded database: a production process never holds PGlite's code in memory. */
const embeddedClient = async () => (await import('knex-pglite')).default;

/** `logger` receives what knex and its pool would print to the console (lost connections, for one). */
export async function openDatabase(options: DatabaseOptions, logger?: Logger): Promise<Database> {
  if (options.url) {
    const db = await openPostgres(options, logger);
    if (options.preparedStatements === false) withoutPreparedStatements.add(db);
    postgresOptions.set(db, { ...options, logger });
    return db;
  }
  const ClientPgLite = await embeddedClient();
  const log = knexLog(logger);
  if (options.embeddedDir === ':memory:') return knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: {}, log });
  await mkdir(options.embeddedDir, { recursive: true });
  const release = await lockEmbeddedDatabase(options.embeddedDir);
  const db = knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: { filename: options.embeddedDir }, log });
  lockReleases.set(db, release);
  return db;
}

const lockReleases = new WeakMap<Database, () => Promise<void>>();

/** What each PostgreSQL handle was opened with, for the migration handle opened beside it. */
const postgresOptions = new WeakMap<Database, DatabaseOptions & { logger?: Logger }>();

/** Closes the connections and, for the embedded database, releases its lock. */
export async function closeDatabase(db: Database): Promise<void> {
  try {
    await db.destroy();
  } finally {
    await lockReleases.get(db)?.();
    lockReleases.delete(db);
  }
}

/**
 * How long a query waits for a pooled connection, and a new connection for PostgreSQL to answer. knex waits a
 * minute and pg forever by default; with PostgreSQL unreachable that held every request, and its client, for
 * that long before the 503 (src/store/outages.ts). A healthy pool hands a connection over in microseconds.
 */
const ACQUIRE_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * What knex prints while another instance holds the migration lock. `migrate` waits for that instance and
 * tries again, so it is no warning here, and its advice (`knex migrate:unlock`) would break a live migration.
 */
const MIGRATION_LOCK_WAIT = /Can't take lock to run migrations|knex migrate:unlock/;

/** knex's word for a connection it could not open. */
const ACQUIRE_FAILED = /^Acquire connection error/;

/**
 * Where knex's and its pool's own messages go: the JSON log, or without one (the CLI) standard error. Never
 * knex's default, console.log, which would put plain text among the JSON lines or a command's --json output.
 */
function knexLog(logger: Logger | undefined): Knex.Config['log'] {
  const write = (level: 'warn' | 'error' | 'debug') => (message: unknown) => {
    // knex writes some errors with their stack ("Acquire connection error: Error: …\n    at …"): the line is enough.
    const reason = (message instanceof Error ? message.message : String(message)).split('\n')[0] ?? '';
    const routine = level === 'debug' || MIGRATION_LOCK_WAIT.test(reason);
    if (logger) logger[routine ? 'debug' : level]({ reason }, 'database driver');
    // Without a log (the CLI), a connection that fails makes the command fail, which says so once.
    else if (!routine && !ACQUIRE_FAILED.test(reason)) process.stderr.write(`authz: database driver: ${reason}\n`);
  };
  return { warn: write('warn'), error: write('error'), deprecate: write('warn'), debug: write('debug') };
}

/** How long after `statement_timeout` a connection that has said nothing about its query counts as lost. */
const SILENCE_MARGIN_MS = 3_000;

/** The parts of pg's Client used here (`readyForQuery` is not in its type declarations). */
interface PgConnection {
  readyForQuery: boolean;
  connection: { stream: Socket };
}

/**
 * A query PostgreSQL runs too long it ends itself, at `statement_timeout`, and says so (57014). But a connection
 * can also be lost without a word: a failover that moved the server's address, a network partition, a host
 * that froze. pg would then wait for the answer forever, holding the request and, once back in the pool, every
 * query after it. So a connection that stays silent with a query in flight past the timeout and a margin is
 * closed: its query fails as a store outage (503, src/store/outages.ts) and the pool replaces the connection.
 */
function closeWhenSilent(connection: PgConnection, silenceMs: number): void {
  const socket = connection.connection.stream;
  socket.setTimeout(silenceMs);
  socket.on('timeout', () => {
    if (connection.readyForQuery) return; // idle in the pool: nothing is awaited
    const error = Object.assign(new Error(`PostgreSQL said nothing for ${silenceMs} ms about a query in flight`), { code: 'ETIMEDOUT' });
    socket.destroy(error);
  });
}

async function openPostgres(options: DatabaseOptions, logger?: Logger): Promise<Database> {
  const { url, schema } = options;
  const timeoutMs = (options.queryTimeoutSeconds ?? 0) * 1000;
  const connectionOptions = { connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS };
  const log = knexLog(logger);
  if (schema) {
    // Create the schema with a short-lived handle first: the pooled one sets search_path on every connection.
    // It is the first to meet an unreachable PostgreSQL, so it gives up as soon and speaks through the same log.
    const bootstrap = knexFactory({ client: 'pg', connection: connectionOptions, pool: { min: 0, max: 1 }, acquireConnectionTimeout: ACQUIRE_TIMEOUT_MS, log });
    try {
      await bootstrap.raw('create schema if not exists ??', [schema]);
    } finally {
      await bootstrap.destroy();
    }
  }
  return knexFactory({
    client: 'pg',
    connection: { ...connectionOptions, ...(timeoutMs > 0 ? { statement_timeout: timeoutMs } : {}) },
    searchPath: schema ? [schema] : undefined,
    pool: {
      min: 0,
      max: options.poolMax ?? 10,
      afterCreate: (connection: PgConnection, done: (error: Error | null, connection: PgConnection) => void) => {
        if (timeoutMs > 0) closeWhenSilent(connection, timeoutMs + SILENCE_MARGIN_MS);
        done(null, connection);
      },
    },
    acquireConnectionTimeout: ACQUIRE_TIMEOUT_MS,
    log,
  });
}

/**
 * How long an instance waits for another one's migration. Long, because a migration may build an index
 * concurrently on a large table, which takes minutes there (migrations/20261204_0003_owner_indexes.ts).
 */
const MIGRATION_WAIT_MS = 10 * 60_000;

/**
 * Brings the schema up to date. Safe to run from several processes at once: knex takes a lock, the others wait.
 * On PostgreSQL it runs on a handle of its own without the query timeout, since an index build on a large
 * table rightly takes minutes.
 */
export async function migrate(db: Database): Promise<string[]> {
  const options = postgresOptions.get(db);
  if (!options?.queryTimeoutSeconds) return migrateOn(db);
  const migrator = await openPostgres({ ...options, poolMax: 2, queryTimeoutSeconds: 0 }, options.logger);
  try {
    return await migrateOn(migrator);
  } finally {
    await migrator.destroy();
  }
}

async function migrateOn(db: Database): Promise<string[]> {
  const deadline = Date.now() + MIGRATION_WAIT_MS;
  for (;;) {
    try {
      const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
      return applied;
    } catch (error) {
      // Another instance is migrating right now: wait for it rather than fail (knex does not wait by itself).
      if ((error as Error).name !== 'MigrationLocked' || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
