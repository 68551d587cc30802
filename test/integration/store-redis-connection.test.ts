/**
 * The Redis connection fails requests quickly when Redis is down, says so once in the log, and refuses a URL
 * that is not a Redis URL without echoing it (it may hold a password).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ConfigError } from '../../src/config.js';
import { openRedis } from '../../src/store/redis.js';
import { describeWithRedis, redisUrl } from '../support/environment.js';

function capturingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

test('a URL that is not redis:// or rediss:// is refused with a reason and without the URL', () => {
  const attempt = () => openRedis('http://user:hunter2@cache.internal:6379');
  expect(attempt).toThrow(ConfigError);
  expect(attempt).toThrow('REDIS_URL must start with redis:// or rediss://');
  expect(attempt).not.toThrow(/hunter2/);
});

test('with Redis down, a command fails within seconds and the outage is logged once', async () => {
  const { logger, lines } = capturingLogger();
  // Port 1 on loopback: nothing listens there, so every connection attempt is refused at once.
  const redis = openRedis('redis://127.0.0.1:1', logger);
  try {
    const started = Date.now();
    await expect(redis.get('anything')).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5000);
    const outages = lines.filter((line) => line.msg.startsWith('Redis is unreachable'));
    expect(outages).toHaveLength(1);
  } finally {
    redis.disconnect();
  }
});

describeWithRedis('with Redis up', () => {
  test('commands go through', async () => {
    const redis = openRedis(redisUrl as string);
    try {
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });
});
