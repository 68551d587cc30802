/**
 * How often a device may poll the token endpoint while its person has not yet approved (RFC 8628 §3.5).
 *
 * The device authorization response says `interval` (DEVICE_POLL_INTERVAL, 5 s by default, the RFC's own default).
 * A device that asks again sooner while the request is still pending gets `slow_down` instead of
 * `authorization_pending`, and from then on must wait 5 s more between polls: each `slow_down` adds 5 s, as the
 * RFC tells the client to do. oidc-provider never sends `slow_down`, so a device polling in a tight loop was served
 * a store read per request; Keycloak paces devices the same way.
 *
 * Only polls that would be answered `authorization_pending` are paced: once the person has approved or denied, the
 * next poll gets its answer whenever it comes. A poll is "too soon" when it comes within the interval less one
 * second of the last one (network and timer jitter: a client that waits `interval` between its requests must never
 * be told off). Counted in Redis when there is one, else in the SQL database (rate-limiter-flexible, as the
 * brute-force limits), keyed by a hash of the device code, so every instance agrees.
 */
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { DEVICE_CODE_GRANT } from '../clients/clients.js';
import type { Logger } from '../logger.js';
import { storageId } from '../store/storage-id.js';
import { type LimiterStore, createLimiter } from './failure-limiter.js';

/** What RFC 8628 §3.5 tells a client to add to its interval on each `slow_down`. */
const SLOW_DOWN_STEP_SECONDS = 5;

/** Seconds within which a poll counts as too soon: the interval, less a second of grace (never below one). */
const windowFor = (intervalSeconds: number) => Math.max(1, intervalSeconds - 1);

export class DevicePollPace {
  /** One poll per window; a `slow_down` restarts the window, longer. */
  readonly #polls: RateLimiterAbstract;
  /** `slow_down`s answered per device code, for as long as a device code lives. */
  readonly #slowDowns: RateLimiterAbstract;

  constructor(
    store: LimiterStore,
    /** The interval the device authorization response states. */
    readonly intervalSeconds: number,
    deviceCodeTtlSeconds: number,
  ) {
    this.#polls = createLimiter(store, 'device-poll', 1, windowFor(intervalSeconds));
    this.#slowDowns = createLimiter(store, 'device-slow-down', 1_000_000, deviceCodeTtlSeconds);
  }

  /**
   * Records a poll of a pending device code. Resolves to undefined when it kept its interval, or to the interval
   * (seconds) the device must keep from now on when it came too soon.
   */
  async tooSoon(deviceCode: string): Promise<number | undefined> {
    // The device code is a credential: counted under the hash its record is stored under, never the code itself.
    const key = storageId(deviceCode);
    const slowedDown = (await this.#slowDowns.get(key))?.consumedPoints ?? 0;
    const interval = this.intervalSeconds + SLOW_DOWN_STEP_SECONDS * slowedDown;
    try {
      await this.#polls.consume(key, 1, { customDuration: windowFor(interval) });
      return undefined;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
    }
    const slower = interval + SLOW_DOWN_STEP_SECONDS;
    await Promise.all([this.#slowDowns.consume(key), this.#polls.block(key, windowFor(slower))]);
    return slower;
  }
}

interface OAuthErrorBody {
  error?: string;
  error_description?: string;
}

/**
 * States the interval in the device authorization response, and answers a too-soon poll of a pending device code
 * with `slow_down`. A store that cannot be reached leaves the answer `authorization_pending` (pacing is a courtesy
 * to the server, not a security control) and is logged.
 */
export function devicePollPacing(pace: DevicePollPace, logger: Logger): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST') return next();
    await next();
    const { oidc } = ctx as unknown as KoaContextWithOIDC;
    if (!oidc) return;
    if (oidc.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...ctx.body, interval: pace.intervalSeconds };
      return;
    }
    const body = ctx.body as OAuthErrorBody | undefined;
    if (oidc.route !== 'token' || oidc.params?.grant_type !== DEVICE_CODE_GRANT || body?.error !== 'authorization_pending') return;
    const deviceCode = oidc.params.device_code;
    if (typeof deviceCode !== 'string') return;
    try {
      const slower = await pace.tooSoon(deviceCode);
      if (slower !== undefined) {
        ctx.body = { error: 'slow_down', error_description: `polling too often: wait at least ${slower} seconds between polls` };
      }
    } catch (error) {
      logger.warn({ err: error, requestId: ctx.state.requestId }, 'device polling pace not checked: its store failed');
    }
  };
}
