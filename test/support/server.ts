/**
 * Starts the real server in-process on a free port, on a throw-away database (its own Postgres schema, or an
 * in-memory PGlite) and, when REDIS_URL is set, its own Redis key prefix. Tests talk to it over HTTP.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type AuthzServer, createServer } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { answerClientErrors } from '../../src/http/client-errors.js';
import { createLogger } from '../../src/logger.js';
import { type SqlKind, defaultSqlKind, keysMatching, postgresUrl, redisUrl, uniqueName } from './environment.js';

export interface TestServer {
  /** The issuer identifier (a second instance shares its first's). */
  issuer: string;
  /** Where this instance listens. */
  url: string;
  config: Config;
  server: AuthzServer;
  services: AuthzServer['services'];
  /** The environment the server was configured from (a second instance reuses its stores and secrets). */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  sql?: SqlKind;
  /** Use Redis for short-lived models when REDIS_URL is set (default true). */
  redis?: boolean;
  env?: Record<string, string>;
  /** Share a keys folder with another server. */
  keysDir?: string;
  /** Run as a second instance of this server: same database schema, Redis prefix, secrets (needs Postgres). */
  instanceOf?: TestServer;
  /** The clock that decides key states. */
  now?: () => Date;
  /** Where log lines go (default: nowhere unless TEST_LOG_LEVEL is set). */
  logDestination?: NodeJS.WritableStream;
  /**
   * The issuer's host name (default 127.0.0.1). `localhost` for passkeys: WebAuthn refuses an IP address as the
   * relying party's id, and browsers treat http://localhost as a secure context.
   */
  host?: string;
}

const randomSecret = () => randomBytes(32).toString('base64url');

function storeEnvironment(options: TestServerOptions, sql: SqlKind, scratch: string): Record<string, string> {
  if (options.instanceOf) return { ...options.instanceOf.env };
  if (sql === 'postgres' && !postgresUrl) throw new Error('DATABASE_URL is not set');
  const useRedis = (options.redis ?? true) && redisUrl !== undefined;
  return {
    DATA_DIR: scratch,
    KEYS_DIR: options.keysDir ?? path.join(scratch, 'keys'),
    COOKIE_SECRETS: randomSecret(),
    CLIENT_SECRET_PEPPERS: `t1:${randomSecret()}`,
    ...(sql === 'postgres' ? { DATABASE_URL: postgresUrl as string, DATABASE_SCHEMA: uniqueName('srv') } : {}),
    ...(useRedis ? { REDIS_URL: redisUrl as string, REDIS_KEY_PREFIX: `${uniqueName('srv')}:` } : {}),
  };
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const sql = options.instanceOf ? (options.instanceOf.env.DATABASE_URL ? 'postgres' : 'pglite') : (options.sql ?? defaultSqlKind);
  if (options.instanceOf && sql !== 'postgres') throw new Error('a second instance needs Postgres to share');
  const scratch = await mkdtemp(path.join(tmpdir(), 'authz-test-'));
  const owner = !options.instanceOf;
  // Bind first, so the issuer (fixed when the provider is built) is the address tests will reach.
  const http = createHttpServer();
  answerClientErrors(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  if (!address || typeof address === 'string') throw new Error('server did not bind a TCP port');
  const issuer = options.instanceOf?.issuer ?? `http://${options.host ?? '127.0.0.1'}:${address.port}`;
  const env = {
    ...storeEnvironment(options, sql, scratch),
    ISSUER: issuer,
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    BCRYPT_COST: '4',
    // In line, as production signs with a worker per core (the thread pool has its own test: service.test.ts).
    SIGNING_THREAD: 'event-loop',
    ...options.env,
  };
  let config: Config;
  let server: AuthzServer;
  try {
    config = loadConfig(env);
    if (sql === 'pglite') config.database.embeddedDir = ':memory:';
    server = await createServer(config, createLogger(config.logLevel, false, options.logDestination), { now: options.now });
  } catch (error) {
    // A refused configuration: nothing may be left listening, or jest would not exit.
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await rm(scratch, { recursive: true, force: true });
    throw error;
  }
  http.on('request', server.handleRequest);
  return {
    issuer,
    url: `http://${options.host ?? '127.0.0.1'}:${address.port}`,
    config,
    server,
    services: server.services,
    env,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      if (owner && config.redis && server.services.redis) {
        const redis = server.services.redis;
        // One key per DEL: on a Cluster the keys live in different slots.
        const keys = await keysMatching(redis, `${config.redis.keyPrefix}*`);
        await Promise.all(keys.map((key) => redis.del(key)));
      }
      // Audit events still buffered go first, while their table exists (else closing logs a failed write).
      await server.services.audit.flush();
      if (owner && config.database.schema) await server.services.db.raw('drop schema if exists ?? cascade', [config.database.schema]);
      await server.close();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}
