/**
 * Probes for orchestrators and load balancers:
 *   GET /healthz  the process is alive and serving (no dependency checked: a slow database must not get a
 *                 healthy process restarted)
 *   GET /readyz   Postgres (or PGlite) and Redis answer, signing keys are loaded, and the process is not shutting
 *                 down; 503 with the failing checks otherwise, so the load balancer sends traffic elsewhere
 */
import type { Middleware } from 'koa';
import type { Database } from '../store/database.js';
import type { RedisClient } from '../store/redis.js';

export interface ReadinessSources {
  db: Database;
  redis?: RedisClient;
  hasSigningKeys(): boolean;
  shuttingDown(): boolean;
}

const TIMEOUT_MS = 2000;

async function probe(check: () => Promise<unknown>): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      }),
    ]);
    return undefined;
  } catch (error) {
    return (error as Error).message || 'failed';
  } finally {
    clearTimeout(timer);
  }
}

/**
 * While ioredis has no connection, a PING waits in its offline queue: the probe would wait out its 2 s and blame
 * a slow answer for a Redis that refuses connections, past the 1 s a Kubernetes probe waits by default.
 */
function probeRedis(redis: RedisClient): Promise<string | undefined> {
  if (redis.status !== 'ready') return Promise.resolve(`not connected (${redis.status})`);
  return probe(() => redis.ping());
}

async function readiness(sources: ReadinessSources): Promise<Record<string, string>> {
  const [database, redis] = await Promise.all([
    probe(() => sources.db.raw('select 1')),
    sources.redis ? probeRedis(sources.redis) : Promise.resolve(undefined),
  ]);
  const checks: Record<string, string> = {
    database: database ? `failing: ${database}` : 'ok',
    keys: sources.hasSigningKeys() ? 'ok' : 'failing: no signing key loaded',
    shutdown: sources.shuttingDown() ? 'failing: shutting down' : 'ok',
  };
  if (sources.redis) checks.redis = redis ? `failing: ${redis}` : 'ok';
  return checks;
}

export function healthRoutes(sources: ReadinessSources): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path === '/healthz') {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path === '/readyz') {
      const checks = await readiness(sources);
      const ready = Object.values(checks).every((value) => value === 'ok');
      ctx.set('Cache-Control', 'no-store');
      ctx.status = ready ? 200 : 503;
      ctx.body = { status: ready ? 'ready' : 'not ready', checks };
      return;
    }
    return next();
  };
}
