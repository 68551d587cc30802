/**
 * Tells every instance at once when a brute-force lock is imposed (Redis pub/sub), so that each may remember
 * "this key is not locked" for a minute instead of a second, and ask Redis far less often.
 *
 * The check runs before every client authentication and sign-in. Without a broadcast, an instance believes a
 * key unlocked for 1 s (src/security/failure-limiter.ts), so with many clients in use almost every token request
 * asks Redis. That PTTL is cheap (about 5 µs in Redis; `npm run bench` with 1,000 clients in turn showed no
 * difference in CPU per request, README "Locks announced"); what the broadcast gives is that a lock imposed
 * anywhere is enforced everywhere within the message's delivery (milliseconds) instead of a second, and one
 * check per key per minute instead of per second.
 *
 * Nothing may be believed for long that a missed message could have changed, so:
 * - the long belief holds only while the subscription is live; whenever the connection drops, every limiter
 *   forgets what it believed, and until the subscription is confirmed again beliefs last 1 s, as without Redis;
 * - `epoch` changes with every announcement and every change of the subscription, and a lookup that saw it
 *   change while it waited for Redis keeps its answer only for the short time: Redis orders a lock before or
 *   after the lookup, but the lookup's reply and the announcement come on different connections, in either order.
 */
import { Cluster } from 'ioredis';
import type { RedisClient } from '../store/redis.js';

type Listener = (limiter: string, key: string) => void;

export class LockBroadcast {
  #subscriber?: RedisClient;
  #live = false;
  #closed = false;
  #epoch = 0;
  readonly #onLock = new Set<Listener>();
  readonly #onForget = new Set<() => void>();

  constructor(
    private readonly redis: RedisClient,
    private readonly channel: string,
  ) {}

  /** Whether announcements are arriving now. */
  get live(): boolean {
    return this.#live;
  }

  /** Changes whenever a lock is announced or the subscription changes. */
  get epoch(): number {
    return this.#epoch;
  }

  /** `onLock` hears each announced lock; `onForget` is told to drop every long belief (the connection dropped). */
  listen(onLock: Listener, onForget: () => void): void {
    this.#onLock.add(onLock);
    this.#onForget.add(onForget);
  }

  /** Tells every instance (this one included) that `key` of `limiter` is locked. */
  async announce(limiter: string, key: string): Promise<void> {
    await this.redis.publish(this.channel, JSON.stringify([limiter, key]));
  }

  /** Ends the subscription for good: a lock check still in flight at shutdown must not open it again. */
  close(): void {
    this.#closed = true;
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
    this.#live = false;
  }

  /**
   * Subscribes, once; called on first use, so that a process that never checks a lock (the CLI) opens no second
   * connection. ioredis's own resubscription is off: each time the connection is ready this subscribes itself,
   * and only the confirmation makes the broadcast live again.
   */
  start(): void {
    if (this.#subscriber || this.#closed) return;
    // (A Cluster resubscribes through its own subscriber node; subscribing again on `ready` is harmless.)
    const subscriber: RedisClient = this.redis instanceof Cluster ? this.redis.duplicate() : this.redis.duplicate({ autoResubscribe: false });
    this.#subscriber = subscriber;
    // The main connection logs Redis outages; this one only follows them.
    subscriber.on('error', () => {});
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel).then(
        () => this.#changed(true),
        () => this.#changed(false),
      );
    });
    subscriber.on('close', () => this.#changed(false));
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const announced = parseAnnouncement(message);
      if (!announced) return;
      this.#epoch++;
      for (const listener of this.#onLock) listener(...announced);
    });
  }

  #changed(live: boolean): void {
    this.#epoch++;
    const wasLive = this.#live;
    this.#live = live;
    if (wasLive && !live) for (const forget of this.#onForget) forget();
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
