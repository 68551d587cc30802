/** The brute-force limits the server enforces (README "Brute-force limits"), built from the configuration. */
import type { Config } from '../config.js';
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { DevicePollPace } from './device-poll-pace.js';
import type { Context } from 'koa';
import { FailureLimiter, type LimiterStore, createLimiter, describeWait } from './failure-limiter.js';
import { LockBroadcast } from './lock-broadcast.js';

export interface SecurityLimits {
  /** Wrong passwords per account (keyed by the email typed, so unknown emails are limited alike). */
  loginByAccount: FailureLimiter;
  /** Wrong passwords per client IP, across accounts (password spraying). */
  loginByIp: FailureLimiter;
  /** Failed client authentications per client_id. */
  clientAuthByClient: FailureLimiter;
  /** Failed client authentications per IP. */
  clientAuthByIp: FailureLimiter;
  /**
   * Links asked for by mail (password reset, email confirmation) per address, whether or not an account has it:
   * a mailbox is not flooded, and the answer is the same for every address.
   */
  emailLinksByAddress: RateLimiterAbstract;
  /** Links asked for by mail per client IP, across addresses. */
  emailLinksByIp: RateLimiterAbstract;
  /** Accounts created from the login page per client IP, and attempts at an address that has one. */
  registrationsByIp: RateLimiterAbstract;
  /** Apps registered at /reg per client IP (src/client-registration/): a script cannot fill the clients table. */
  clientRegistrationsByIp: RateLimiterAbstract;
  /** How often a device may poll while its code is pending (RFC 8628 `slow_down`). */
  devicePolling: DevicePollPace;
  /** Closes the lock broadcast's connection, if one was opened. */
  close(): void;
}

const HOUR = 3600;
/** Enough for a person who asks again because the first mail is slow; not enough to fill a mailbox. */
const EMAIL_LINKS_PER_ADDRESS = 5;
/** An office behind one address may have several people who forgot; a script trying addresses is held up. */
const EMAIL_LINKS_PER_IP = 30;

/** A household or office signing up together passes; a script creating accounts or testing addresses does not. */
const REGISTRATIONS_PER_IP = 10;

/** A developer trying things, or an office of MCP clients, passes; a script registering clients does not. */
const CLIENT_REGISTRATIONS_PER_IP = 20;

/**
 * Takes one from each allowance (a limiter and the key it counts); 0 when every one had some left, otherwise how
 * long until the spent one has again.
 */
export async function waitForAllowance(...allowances: [RateLimiterAbstract, string][]): Promise<number> {
  try {
    for (const [limiter, key] of allowances) await limiter.consume(key);
    return 0;
  } catch (refusal) {
    if (refusal instanceof RateLimiterRes) return Math.max(1000, refusal.msBeforeNext);
    throw refusal;
  }
}

/**
 * One link by mail (password reset, email confirmation, a new address) from the client IP's and the address's
 * hourly allowances, counted whether or not an account has the address, so a refusal says nothing about one.
 * Undefined when allowed; otherwise the sentence for the page, with Retry-After set.
 */
export async function refuseEmailLink(ctx: Pick<Context, 'ip' | 'set'>, limits: SecurityLimits, email: string): Promise<string | undefined> {
  const waitMs = await waitForAllowance([limits.emailLinksByIp, ctx.ip], [limits.emailLinksByAddress, email]);
  if (waitMs === 0) return undefined;
  ctx.set('Retry-After', String(Math.ceil(waitMs / 1000)));
  return `Too many links were asked for. Try again in ${describeWait(waitMs)}.`;
}

export function createSecurityLimits(config: Config, base: Omit<LimiterStore, 'broadcast'>): SecurityLimits {
  const { limits } = config;
  const shared = { windowSeconds: limits.windowSeconds, lockSeconds: limits.lockSeconds, maxLockSeconds: limits.maxLockSeconds };
  // One subscription for the four limiters.
  const broadcast = base.redis ? new LockBroadcast(base.redis, `${base.redisKeyPrefix ?? ''}limit:locks`) : undefined;
  const store: LimiterStore = { ...base, broadcast };
  return {
    close: () => broadcast?.close(),
    loginByAccount: new FailureLimiter(store, { name: 'login-account', maxFailures: limits.loginPerAccount, ...shared }),
    loginByIp: new FailureLimiter(store, { name: 'login-ip', maxFailures: limits.loginPerIp, ...shared }),
    clientAuthByClient: new FailureLimiter(store, { name: 'client-auth', maxFailures: limits.clientAuthFailures, ...shared }),
    clientAuthByIp: new FailureLimiter(store, { name: 'client-auth-ip', maxFailures: limits.clientAuthFailures * 5, ...shared }),
    emailLinksByAddress: createLimiter(store, 'mail-address', EMAIL_LINKS_PER_ADDRESS, HOUR),
    emailLinksByIp: createLimiter(store, 'mail-ip', EMAIL_LINKS_PER_IP, HOUR),
    registrationsByIp: createLimiter(store, 'register-ip', REGISTRATIONS_PER_IP, HOUR),
    clientRegistrationsByIp: createLimiter(store, 'client-register-ip', CLIENT_REGISTRATIONS_PER_IP, HOUR),
    devicePolling: new DevicePollPace(store, config.devicePollIntervalSeconds, config.ttl.deviceCode),
  };
}
