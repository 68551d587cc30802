/**
 * One Redis pub/sub channel that every instance listens to, for beliefs an instance may hold in process only
 * while it hears what other instances change: brute-force locks (src/security/lock-broadcast.ts) and revoked
 * token records (./token-record-cache.ts).
 *
 * Nothing may be believed for long that a missed message could have changed, so:
 * - `live` holds only while the subscription is confirmed; whenever the connection drops, every listener is told
 *   to forget what it believed, and stays without long beliefs until the subscription is confirmed again;
 * - `epoch` changes with every message and every change of the subscription. A lookup that saw it change while
 *   it waited for its store keeps no long belief from the answer: the store orders a change before or after the
 *   lookup, but the lookup's reply and the message arrive on different connections, in either order.
 */
import { Cluster } from 'ioredis';
import type { RedisClient } from './redis.js';

export class RedisBroadcast {
  #subscriber?: RedisClient;
  #live = false;
  #closed = false;
  #epoch = 0;
  readonly #onMessage = new Set<(message: string) => void>();
  readonly #onForget = new Set<() => void>();

  constructor(
    private readonly redis: RedisClient,
    private readonly channel: string,
  ) {}

  /** Whether messages are arriving now. */
  get live(): boolean {
    return this.#live;
  }

  /** Changes whenever a message arrives, this instance publishes one, or the subscription changes. */
  get epoch(): number {
    return this.#epoch;
  }

  /** `onMessage` hears each message; `onForget` is told to drop every long belief (the connection dropped). */
  listen(onMessage: (message: string) => void, onForget: () => void): void {
    this.#onMessage.add(onMessage);
    this.#onForget.add(onForget);
  }

  /**
   * Tells every instance, this one included. The epoch moves at once, before the message comes back, so that a
   * lookup of this instance already on its way keeps no long belief from an answer that the change may precede.
   */
  async publish(message: string): Promise<void> {
    this.#epoch++;
    await this.redis.publish(this.channel, message);
  }

  /** Ends the subscription for good: a lookup still in flight at shutdown must not open it again. */
  close(): void {
    this.#closed = true;
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
    this.#live = false;
  }

  /**
   * Subscribes, once; called on first use, so that a process that never needs it (the CLI) opens no second
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
      this.#epoch++;
      for (const listener of this.#onMessage) listener(message);
    });
  }

  #changed(live: boolean): void {
    this.#epoch++;
    const wasLive = this.#live;
    this.#live = live;
    if (wasLive && !live) for (const forget of this.#onForget) forget();
  }
}
