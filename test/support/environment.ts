/**
 * Where tests find Postgres and Redis, and how each test file gets a database schema and a Redis key prefix of
 * its own so that runs never collide.
 *
 * DATABASE_URL / REDIS_URL point at real servers (CI sets both). Without DATABASE_URL the SQL suites run on
 * embedded PGlite; without REDIS_URL the Redis suites are reported as skipped. Under CI=true nothing may be
 * skipped, so a missing server fails the run instead.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { type Database, migrate, openDatabase } from '../../src/store/database.js';

export const inCi = process.env.CI === 'true';
export const postgresUrl = process.env.DATABASE_URL || undefined;
export const redisUrl = process.env.REDIS_URL || undefined;

if (inCi && (!postgresUrl || !redisUrl)) {
  throw new Error('CI=true needs DATABASE_URL and REDIS_URL: under CI no suite may be skipped');
}

/** A name no other test run uses: lower-case, safe as a schema name or key prefix. */
export const uniqueName = (prefix: string) => `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;

export type SqlKind = 'postgres' | 'pglite';

/** The SQL stores available to this run: always PGlite, and Postgres when DATABASE_URL is set. */
export const sqlKinds: SqlKind[] = postgresUrl ? ['postgres', 'pglite'] : ['pglite'];

/** The store `describe` blocks that need "a SQL database" use: Postgres when configured, else PGlite. */
export const defaultSqlKind: SqlKind = postgresUrl ? 'postgres' : 'pglite';

export interface TestDatabase {
  db: Database;
  /** What to put in a server's config to reach the same database. */
  options: { url?: string; schema?: string; embeddedDir: string };
  drop(): Promise<void>;
}

/** A fresh, migrated database: its own schema on Postgres, or an in-memory PGlite. */
export async function createTestDatabase(kind: SqlKind = defaultSqlKind): Promise<TestDatabase> {
  const options =
    kind === 'postgres'
      ? { url: postgresUrl, schema: uniqueName('test'), embeddedDir: ':memory:' }
      : { embeddedDir: ':memory:' };
  if (kind === 'postgres' && !postgresUrl) throw new Error('DATABASE_URL is not set');
  const db = await openDatabase(options);
  await migrate(db);
  return {
    db,
    options,
    async drop() {
      if (options.schema) await db.raw('drop schema if exists ?? cascade', [options.schema]);
      await db.destroy();
    },
  };
}

export interface TestRedis {
  redis: Redis;
  url: string;
  keyPrefix: string;
  /** Deletes every key under this prefix and disconnects. */
  drop(): Promise<void>;
}

export async function createTestRedis(): Promise<TestRedis> {
  if (!redisUrl) throw new Error('REDIS_URL is not set');
  const keyPrefix = `${uniqueName('test')}:`;
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  return {
    redis,
    url: redisUrl,
    keyPrefix,
    async drop() {
      const keys = await keysMatching(redis, `${keyPrefix}*`);
      for (let from = 0; from < keys.length; from += 500) await redis.del(...keys.slice(from, from + 500));
      redis.disconnect();
    },
  };
}

/** Every key matching `pattern`: from each master of a Redis Cluster, or from the one server. */
export async function keysMatching(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  const servers = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const keys: string[] = [];
  for (const server of servers) {
    let cursor = '0';
    do {
      const [next, batch] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys;
}

/** `describe` when Redis is configured; otherwise jest reports the suite as skipped (never under CI). */
export const describeWithRedis = (redisUrl ? describe : describe.skip) as jest.Describe;

/** `describe` when Postgres and Redis are configured (e.g. several instances sharing them); otherwise skipped. */
export const describeWithServers = (postgresUrl && redisUrl ? describe : describe.skip) as jest.Describe;
