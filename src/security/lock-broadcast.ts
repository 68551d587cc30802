/**
 * Tells every instance at once when a brute-force lock is imposed (a Redis broadcast, src/store/broadcast.ts), so
 * that each may remember "this key is not locked" for a minute instead of a second, and ask Redis far less often.
 *
 * The check runs before every client authentication and sign-in. Without a broadcast, an instance believes a
 * key unlocked for 1 s (src/security/failure-limiter.ts), so with many clients in use almost every token request
 * asks Redis. That PTTL is cheap (about 5 µs in Redis; `npm run bench` with 1,000 clients in turn showed no
 * difference in CPU per request, README "Locks announced"); what the broadcast gives is that a lock imposed
 * anywhere is enforced everywhere within the message's delivery (milliseconds) instead of a second, and one
 * check per key per minute instead of per second. The long belief holds only while the broadcast is live, and
 * is forgotten when it drops (the rules are the broadcast's).
 */
import { RedisBroadcast } from '../store/broadcast.js';
import type { RedisClient } from '../store/redis.js';

type Listener = (limiter: string, key: string) => void;

export class LockBroadcast {
  readonly #broadcast: RedisBroadcast;

  constructor(redis: RedisClient, channel: string) {
    this.#broadcast = new RedisBroadcast(redis, channel);
  }

  /** Whether announcements are arriving now. */
  get live(): boolean {
    return this.#broadcast.live;
  }

  /** Changes whenever a lock is announced or the subscription changes. */
  get epoch(): number {
    return this.#broadcast.epoch;
  }

  /** `onLock` hears each announced lock; `onForget` is told to drop every long belief (the connection dropped). */
  listen(onLock: Listener, onForget: () => void): void {
    this.#broadcast.listen((message) => {
      const announced = parseAnnouncement(message);
      if (announced) onLock(...announced);
    }, onForget);
  }

  /** Tells every instance (this one included) that `key` of `limiter` is locked. */
  announce(limiter: string, key: string): Promise<void> {
    return this.#broadcast.publish(JSON.stringify([limiter, key]));
  }

  close(): void {
    this.#broadcast.close();
  }

  /** Subscribes on first use: a process that never checks a lock (the CLI) opens no second connection. */
  start(): void {
    this.#broadcast.start();
  }
}

function parseAnnouncement(message: string): [limiter: string, key: string] | undefined {
  try {
    const value: unknown = JSON.parse(message);
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [limiter, key] = value;
    return typeof limiter === 'string' && typeof key === 'string' ? [limiter, key] : undefined;
  } catch {
    return undefined;
  }
}
