/**
 * The Redis connection (ioredis) for sessions and short-lived artifacts.
 *
 * A request should fail fast when Redis is down rather than hang: commands are queued while the client
 * reconnects, but each one is given up after a couple of failed reconnection attempts, and the provider turns the
 * failure into a 5xx (and a `server_error` event) instead of a stuck connection.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError, type RedisConfig } from '../config.js';
import type { Logger } from '../logger.js';

/** One Redis server (found directly or through Sentinel), or a Redis Cluster: the same commands either way. */
export type RedisClient = Redis | Cluster;

/** How long a command may go unanswered before it fails (then answered 503: src/store/outages.ts). */
const COMMAND_TIMEOUT_MS = 5000;

/** Reconnection attempts a queued command waits through before it fails. */
const MAX_RETRIES_PER_REQUEST = 2;

type RedisTarget = Pick<RedisConfig, 'url' | 'sentinels' | 'sentinelMaster' | 'clusterNodes'>;

/**
 * Connects to a redis:// or rediss:// (TLS) URL, e.g. `rediss://:password@redis.internal:6380/0`, to the master
 * that Sentinels name, or to a Redis Cluster through some of its nodes. Connecting happens in the background; the
 * first commands wait for it. With a logger, losing and regaining the connection are logged once each, instead of
 * ioredis printing every failed reconnection attempt.
 */
export function openRedis(target: string | RedisTarget, logger?: Logger): RedisClient {
  const { url, sentinels, sentinelMaster, clusterNodes } = typeof target === 'string' ? { url: target, sentinelMaster: '' } : target;
  // The URL may carry a password, so it is never repeated in the message.
  if (!/^rediss?:\/\//i.test(url)) throw new ConfigError(['REDIS_URL must start with redis:// or rediss://']);
  const options = {
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    connectTimeout: 5000,
    // A socket that never connected does not close by itself; don't let it hold up shutdown during an outage.
    disconnectTimeout: 500,
    // Commands issued in the same tick (a request's parallel lookups, concurrent requests) share one write.
    enableAutoPipelining: true,
    // A Redis that accepts connections but stops answering (hung, or a network path that drops packets) would
    // hold every request forever: ioredis waits without limit by default. Every command here is a key lookup or
    // a short script that a healthy server answers in well under a millisecond.
    commandTimeout: COMMAND_TIMEOUT_MS,
  };
  const redis = clusterNodes?.length
    ? openCluster(clusterNodes, url, options)
    : sentinels?.length
      ? openThroughSentinels(sentinels, sentinelMaster, url, options)
      : new Redis(url, options);
  if (logger) {
    let connected = true;
    redis.on('error', (error: Error) => {
      if (connected) logger.error({ err: error }, 'Redis is unreachable; requests that need it fail until it is back');
      connected = false;
    });
    redis.on('ready', () => {
      if (!connected) logger.info('Redis is reachable again');
      connected = true;
    });
  } else {
    // The CLI: a command that needs Redis fails and says so; ioredis would otherwise print each reconnection's
    // error, stack and all ("Unhandled error event").
    redis.on('error', () => undefined);
  }
  return redis;
}

/**
 * The master that the sentinels name: REDIS_URL gives the password, database and TLS. ioredis dials the master in
 * plain TCP unless told twice (`tls` and `enableTLSForSentinelMode`), so a rediss:// URL would otherwise be
 * ignored without a word. The sentinels themselves are asked in plain TCP, as redis-server's sentinel mode
 * answers by default.
 */
function openThroughSentinels(sentinels: { host: string; port: number }[], master: string, url: string, options: RedisOptions): Redis {
  const credentials = credentialsOf(url);
  return new Redis({ ...options, ...credentials, enableTLSForSentinelMode: credentials.tls !== undefined, sentinels, name: master });
}

/** A Redis Cluster client: REDIS_URL gives the password and TLS, the nodes the rest (a Cluster has only database 0). */
function openCluster(nodes: { host: string; port: number }[], url: string, options: RedisOptions): Cluster {
  const credentials = credentialsOf(url);
  return new Cluster(nodes, {
    enableAutoPipelining: true,
    // Every command goes to the master of its slot: a replica could answer "not found" for a token just written.
    scaleReads: 'master',
    // With TLS, nodes are dialled by the names the cluster announces, so that their certificates can match.
    dnsLookup: credentials.tls ? (address, callback) => callback(null, address) : undefined,
    redisOptions: { ...options, ...credentials, db: undefined },
  });
}

/** What REDIS_URL contributes when the sentinels or the cluster say where to connect: password, database, TLS. */
function credentialsOf(url: string) {
  const parsed = new URL(url);
  return {
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}
