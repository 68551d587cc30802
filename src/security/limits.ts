/** The brute-force limits the server enforces (README "Brute-force limits"), built from the configuration. */
import type { Config } from '../config.js';
import { DevicePollPace } from './device-poll-pace.js';
import { FailureLimiter, type LimiterStore } from './failure-limiter.js';
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
  /** How often a device may poll while its code is pending (RFC 8628 `slow_down`). */
  devicePolling: DevicePollPace;
  /** Closes the lock broadcast's connection, if one was opened. */
  close(): void;
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
    devicePolling: new DevicePollPace(store, config.devicePollIntervalSeconds, config.ttl.deviceCode),
  };
}
