/**
 * Access-token records kept in process (src/store/token-record-cache.ts): a second read is answered from memory,
 * a deletion made through any instance reaches every other one within milliseconds, and nothing is kept that a
 * missed or overtaking announcement could have made wrong.
 */
import { randomUUID } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import { RedisBroadcast } from '../../src/store/broadcast.js';
import { openRedis, type RedisClient } from '../../src/store/redis.js';
import { RedisAdapter } from '../../src/store/redis-adapter.js';
import { storageId } from '../../src/store/storage-id.js';
import { TokenRecordCache, type TokenRecordCacheOptions } from '../../src/store/token-record-cache.js';
import { createTestRedis, describeWithRedis, redisUrl, type TestRedis } from '../support/environment.js';
import { waitFor } from '../support/process.js';

const epochNow = () => Math.floor(Date.now() / 1000);
const KEPT = { maxEntries: 100, ttlMs: 60_000 };

function accessToken(extra: Partial<AdapterPayload> = {}): AdapterPayload {
  return { jti: randomUUID(), kind: 'AccessToken', iat: epochNow(), exp: epochNow() + 60, clientId: 'api-client', scope: 'read', ...extra };
}

describeWithRedis('access-token records kept in process', () => {
  let keys: TestRedis;
  const opened: { redis: RedisClient; cache: TokenRecordCache }[] = [];

  /** One server instance's view: its own connections, the same key prefix and broadcast channel as the others. */
  function instance(options: TokenRecordCacheOptions = KEPT) {
    const redis = openRedis(redisUrl as string);
    const broadcast = new RedisBroadcast(redis, `${keys.keyPrefix}tokens:deleted`);
    const cache = new TokenRecordCache(broadcast, options);
    opened.push({ redis, cache });
    return { redis, broadcast, cache, tokens: new RedisAdapter('AccessToken', redis, keys.keyPrefix, cache) };
  }

  /** Deletes a record behind every instance's back, as a key removed by hand would be: nothing is announced. */
  const deleteSilently = (id: string) => keys.redis.del(`${keys.keyPrefix}AccessToken:record:${storageId(id)}`);

  /** Reads `id` once the instance's broadcast is live, so that the answer is kept. */
  async function readAndKeep(view: ReturnType<typeof instance>, id: string) {
    await view.tokens.find(id); // subscribes
    await waitFor(() => view.broadcast.live, 'the broadcast to be live');
    return view.tokens.find(id);
  }

  beforeAll(async () => {
    keys = await createTestRedis();
  });

  afterAll(async () => {
    for (const { redis, cache } of opened) {
      cache.close();
      redis.disconnect();
    }
    await keys.drop();
  });

  test('a record read once is answered from memory afterwards, as it was written', async () => {
    const view = instance();
    const payload = accessToken({ extra: { nested: [1, { two: 2 }] } });
    await view.tokens.upsert(payload.jti as string, payload, 60);
    expect(await readAndKeep(view, payload.jti as string)).toEqual(payload);

    await deleteSilently(payload.jti as string);
    expect(await view.tokens.find(payload.jti as string)).toEqual(payload);
    // Each answer is a fresh object: what the provider does with one cannot change the next.
    const answer = (await view.tokens.find(payload.jti as string)) as AdapterPayload;
    (answer.extra as { nested: unknown[] }).nested.push('changed');
    expect(await view.tokens.find(payload.jti as string)).toEqual(payload);
  });

  test('it counts what /metrics shows: lookups from memory and from Redis, copies kept, the broadcast live', async () => {
    const view = instance();
    expect(view.cache.stats).toEqual({ hits: 0, misses: 0, entries: 0, live: false });
    const payload = accessToken();
    await view.tokens.upsert(payload.jti as string, payload, 60);
    await readAndKeep(view, payload.jti as string); // two reads from Redis: the first one subscribes
    expect(view.cache.stats).toEqual({ hits: 0, misses: 2, entries: 1, live: true });
    await view.tokens.find(payload.jti as string);
    await view.tokens.find(payload.jti as string);
    expect(view.cache.stats).toEqual({ hits: 2, misses: 2, entries: 1, live: true });

    // Keeping turned off: nothing to count, and never live, whatever the broadcast does.
    const off = instance({ maxEntries: 0, ttlMs: 60_000 });
    await off.tokens.find(payload.jti as string);
    expect(off.cache.stats).toEqual({ hits: 0, misses: 0, entries: 0, live: false });
  });

  test('a token revoked through one instance is gone from another that kept it, within milliseconds', async () => {
    const [issuer, resourceSide] = [instance(), instance()];
    const payload = accessToken();
    await issuer.tokens.upsert(payload.jti as string, payload, 60);
    expect(await readAndKeep(resourceSide, payload.jti as string)).toEqual(payload);

    const revokedAt = Date.now();
    await issuer.tokens.destroy(payload.jti as string);
    await waitFor(async () => (await resourceSide.tokens.find(payload.jti as string)) === undefined, 'the copy to be dropped', 500);
    expect(Date.now() - revokedAt).toBeLessThan(500);
  });

  test('revoking a grant drops the copies of its tokens everywhere', async () => {
    const [issuer, resourceSide] = [instance(), instance()];
    const grantId = randomUUID();
    const payloads = [accessToken({ grantId }), accessToken({ grantId })];
    for (const payload of payloads) await issuer.tokens.upsert(payload.jti as string, payload, 60);
    for (const payload of payloads) expect(await readAndKeep(resourceSide, payload.jti as string)).toEqual(payload);

    await issuer.tokens.revokeByGrantId(grantId);
    for (const payload of payloads) {
      await waitFor(async () => (await resourceSide.tokens.find(payload.jti as string)) === undefined, 'the copy to be dropped', 500);
    }
  });

  test('when the broadcast drops, every copy is dropped and none is kept until it is back', async () => {
    const view = instance();
    const payload = accessToken();
    await view.tokens.upsert(payload.jti as string, payload, 60);
    expect(await readAndKeep(view, payload.jti as string)).toEqual(payload);

    // Every subscriber connection on this Redis (the lock broadcast's tests make their own, on their own prefix).
    await view.redis.call('client', 'kill', 'type', 'pubsub');
    await waitFor(() => !view.broadcast.live, 'the broadcast to drop', 5000);
    expect(view.cache.stats).toMatchObject({ entries: 0, live: false });
    await deleteSilently(payload.jti as string);
    expect(await view.tokens.find(payload.jti as string)).toBeUndefined();
    await waitFor(() => view.broadcast.live, 'the broadcast to come back', 5000);
  });

  test('a record whose read an announcement overtook is not kept', async () => {
    const view = instance();
    const payload = accessToken();
    await view.tokens.upsert(payload.jti as string, payload, 60);
    await readAndKeep(view, accessToken().jti as string); // subscribed and live, on another id
    const reading = view.tokens.find(payload.jti as string);
    // Announced while the read is on its way: the answer may be older than the deletion announced.
    await view.broadcast.publish('some other record');
    expect(await reading).toEqual(payload);
    await deleteSilently(payload.jti as string);
    expect(await view.tokens.find(payload.jti as string)).toBeUndefined();
  });

  test('a copy is kept no longer than TOKEN_CACHE_TTL_MS, nor than the record itself lives', async () => {
    const view = instance({ maxEntries: 100, ttlMs: 300 });
    const payload = accessToken();
    await view.tokens.upsert(payload.jti as string, payload, 60);
    expect(await readAndKeep(view, payload.jti as string)).toEqual(payload);
    await deleteSilently(payload.jti as string);
    expect(await view.tokens.find(payload.jti as string)).toEqual(payload);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await view.tokens.find(payload.jti as string)).toBeUndefined();

    // Expired 20 s ago: past the clock tolerance Redis keeps it for, so no copy is kept at all.
    const expired = accessToken({ exp: epochNow() - 20 });
    await view.tokens.upsert(expired.jti as string, expired, 60);
    expect(await view.tokens.find(expired.jti as string)).toEqual(expired);
    await deleteSilently(expired.jti as string);
    expect(await view.tokens.find(expired.jti as string)).toBeUndefined();
  });

  test('an instance that keeps no copies still announces its deletions to those that do', async () => {
    const [issuer, resourceSide] = [instance({ maxEntries: 0, ttlMs: 60_000 }), instance()];
    const payload = accessToken();
    await issuer.tokens.upsert(payload.jti as string, payload, 60);
    expect(await readAndKeep(resourceSide, payload.jti as string)).toEqual(payload);
    expect(issuer.broadcast.live).toBe(false); // it never subscribed
    await issuer.tokens.destroy(payload.jti as string);
    await waitFor(async () => (await resourceSide.tokens.find(payload.jti as string)) === undefined, 'the copy to be dropped', 500);
  });
});
