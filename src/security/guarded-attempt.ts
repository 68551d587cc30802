/**
 * The brute-force guard every sign-in step shares (the password, src/security/password-sign-in.ts; the second
 * factor, ./second-factor-sign-in.ts): an account or IP that is locked is refused before what was typed is looked
 * at (so a lock cannot be used to test guesses), and a wrong guess counts against both and may lock them. Each
 * refusal is recorded through the caller's `record`, with the caller's reason.
 */
import type { SecurityLimits } from './limits.js';

export type GuardedOutcome<T> = { passed: T } | { lockedMs: number } | { rejected: true };

type RecordEvent = (outcome: 'failure', type: string, detail: { [key: string]: unknown }) => void;

export async function guardedAttempt<T>(
  limits: SecurityLimits,
  who: { email: string; ip: string },
  record: RecordEvent,
  attempt: { check: () => Promise<T | undefined>; failureReason: string; lockedDetail?: { [key: string]: unknown } },
): Promise<GuardedOutcome<T>> {
  const locked = Math.max(...(await Promise.all([limits.loginByAccount.lockedFor(who.email), limits.loginByIp.lockedFor(who.ip)])));
  if (locked > 0) {
    record('failure', 'sign_in', { reason: 'locked', ...attempt.lockedDetail });
    return { lockedMs: locked };
  }
  const passed = await attempt.check();
  if (passed !== undefined) return { passed };
  const [accountLock, ipLock] = await Promise.all([limits.loginByAccount.fail(who.email), limits.loginByIp.fail(who.ip)]);
  record('failure', 'sign_in', { reason: attempt.failureReason });
  const lock = Math.max(accountLock, ipLock);
  if (lock === 0) return { rejected: true };
  record('failure', 'sign_in_locked', { lockSeconds: Math.ceil(lock / 1000), by: accountLock ? 'account' : 'ip' });
  return { lockedMs: lock };
}
