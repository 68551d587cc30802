/**
 * Brute-force locks as an administrator sees and lifts them (Keycloak's "unlock user"). A person locked out by
 * someone guessing at their email, a service locked after a secret rotation went wrong, an office whose shared
 * address tripped the per-IP limit: each would otherwise wait out a lock that doubles up to LOGIN_MAX_LOCK. An
 * unlock also forgets the failures and the earlier locks, so a later lock starts short again. Each unlock that
 * lifted a lock is audited with its actor (`user_unlocked`, `client_unlocked`, `ip_unlocked`).
 */
import { isIP, isIPv4 } from 'node:net';
import type { AuditSink } from '../audit/audit-log.js';
import { InputError } from '../errors.js';
import type { FailureLimiter } from './failure-limiter.js';
import type { SecurityLimits } from './limits.js';

/** An address's locks: by wrong passwords, and by failed client authentication. */
export interface IpLocks {
  signIn: Date | null;
  clientAuthentication: Date | null;
}

export class LockAdministration {
  constructor(
    private readonly limits: SecurityLimits,
    private readonly options: { audit?: AuditSink; actor?: string } = {},
  ) {}

  /** When the sign-in lock on this email ends, or null when it has none. */
  accountLockedUntil(email: string): Promise<Date | null> {
    return lockedUntil(this.limits.loginByAccount, [normalEmail(email)]);
  }

  /** When the client's authentication lock ends, or null when it has none. */
  clientLockedUntil(clientId: string): Promise<Date | null> {
    return lockedUntil(this.limits.clientAuthByClient, [clientId]);
  }

  /** When the address's locks end (null: none). */
  async ipLockedUntil(ip: string): Promise<IpLocks> {
    const [signIn, clientAuthentication] = await Promise.all([
      lockedUntil(this.limits.loginByIp, spellings(ip)),
      lockedUntil(this.limits.clientAuthByIp, spellings(ip)),
    ]);
    return { signIn, clientAuthentication };
  }

  /**
   * Lifts the sign-in lock of the user's email. Returns when the lifted lock would have ended, or null when there
   * was none (and nothing is recorded).
   */
  async unlockAccount(user: { id: string; email: string }): Promise<Date | null> {
    const email = normalEmail(user.email);
    const lifted = await lift(this.limits.loginByAccount, [email]);
    if (lifted) this.#record('user_unlocked', { accountId: user.id, detail: { email } });
    return lifted;
  }

  /** Lifts the client's authentication lock; when it would have ended, or null. */
  async unlockClient(clientId: string): Promise<Date | null> {
    const lifted = await lift(this.limits.clientAuthByClient, [clientId]);
    if (lifted) this.#record('client_unlocked', { clientId });
    return lifted;
  }

  /**
   * Lifts both of the address's locks (an administrator trusts the address); returns those it lifted. An IPv4
   * address is also lifted in its IPv6-mapped spelling, which a server listening on `::` sees.
   */
  async unlockIp(ip: string): Promise<IpLocks> {
    const [signIn, clientAuthentication] = await Promise.all([
      lift(this.limits.loginByIp, spellings(ip)),
      lift(this.limits.clientAuthByIp, spellings(ip)),
    ]);
    const limits = [signIn && 'sign_in', clientAuthentication && 'client_authentication'].filter(Boolean);
    if (limits.length > 0) this.#record('ip_unlocked', { ip, detail: { limits } });
    return { signIn, clientAuthentication };
  }

  #record(type: string, event: { accountId?: string; clientId?: string; ip?: string; detail?: Record<string, unknown> }): void {
    this.options.audit?.record({ type, outcome: 'success', ...event, detail: { by: this.options.actor, ...event.detail } });
  }
}

/** Sign-in failures are counted by the email as typed, trimmed and lower-cased (src/security/password-sign-in.ts). */
const normalEmail = (email: string) => email.trim().toLowerCase();

/**
 * The keys an address may be counted under: as given, and an IPv4 address also as IPv4-mapped IPv6. What is not
 * an address is refused with a reason (the CLI and the admin API pass what an operator typed).
 */
function spellings(ip: string): string[] {
  if (!isIP(ip)) throw new InputError(`${ip} is not an IPv4 or IPv6 address`);
  return isIPv4(ip) ? [ip, `::ffff:${ip}`] : [ip];
}

/** When the latest lock of any of `keys` ends, or null. */
async function lockedUntil(limiter: FailureLimiter, keys: string[]): Promise<Date | null> {
  const ms = Math.max(0, ...(await Promise.all(keys.map((key) => limiter.lockRemaining(key)))));
  // Whole seconds: the store counts down in milliseconds, so two readings would differ by a few.
  return ms > 0 ? new Date(Math.ceil((Date.now() + ms) / 1000) * 1000) : null;
}

/** Unlocks every one of `keys`; when the latest of their locks would have ended, or null when none was locked. */
async function lift(limiter: FailureLimiter, keys: string[]): Promise<Date | null> {
  const until = await lockedUntil(limiter, keys);
  await Promise.all(keys.map((key) => limiter.unlock(key)));
  return until;
}
