/**
 * A sign-in with email and password, the one way both the login page and the legacy password grant check one:
 * a locked account or IP is refused before the password is looked at (so a lock cannot be used to test
 * passwords), a failure counts against both the account and the IP, a success clears the account's count, and
 * every outcome is audited. Callers only turn the outcome into their own kind of answer.
 */
import type { SecondFactorStep, TwoFactor } from '../accounts/two-factor.js';
import type { User, UserRepository } from '../accounts/users.js';
import type { AuditSink } from '../audit/audit-log.js';
import { guardedAttempt } from './guarded-attempt.js';
import type { SecurityLimits } from './limits.js';

/**
 * `secondFactor`: the password was right, and the user must now type a code (or set up their app first); the
 * account's failure count is not cleared until they do, so knowing the password does not buy fresh guesses at codes.
 * `emailUnconfirmed`: the password was right, and the account is refused for its unconfirmed address.
 */
export type SignInOutcome = { user: User; secondFactor?: Exclude<SecondFactorStep, 'none'>; emailUnconfirmed?: true } | { lockedMs: number } | { rejected: true };

export interface SignInAttempt {
  email: string;
  password: string;
  ip: string;
  clientId: string;
  /** Where the request came from, as the audit log records it. */
  facts: { ip: string | null; userAgent: string | null; requestId: string | null };
  /** Recorded with each event when the attempt is not the login page (e.g. `password_grant`). */
  via?: string;
  /** The client requires or asked for a second factor: even a user who has none must set one up. */
  secondFactorAsked?: boolean;
  /**
   * EMAIL_CONFIRMATION_REQUIRED where no page can ask for the confirmation (the password grant): a right password
   * of an unconfirmed account is refused as `email_unconfirmed`. The login page holds such an account at its
   * confirmation page instead (src/interaction/email-confirmation.ts).
   */
  refuseUnconfirmedEmail?: boolean;
}

export async function signInWithPassword(
  deps: { users: UserRepository; twoFactor: TwoFactor; limits: SecurityLimits; audit: AuditSink },
  attempt: SignInAttempt,
): Promise<SignInOutcome> {
  const { limits } = deps;
  const email = attempt.email.trim().toLowerCase();
  const record = (outcome: 'success' | 'failure', type: string, detail: Record<string, unknown>, accountId?: string) =>
    deps.audit.record({
      type,
      outcome,
      accountId,
      clientId: attempt.clientId,
      ...attempt.facts,
      detail: { email, ...(attempt.via ? { via: attempt.via } : {}), ...detail },
    });

  // A refusal names the account the address belongs to, if any, so that its owner (the account page's recent
  // sign-ins) and `audit search --account` see attempts on it. Looked up after the refusal, for known and unknown
  // addresses alike, so it tells no one which exist.
  const refused = (outcome: 'failure', type: string, detail: Record<string, unknown>) =>
    void deps.users.findByEmail(email).then(
      (user) => record(outcome, type, detail, user?.id),
      () => record(outcome, type, detail),
    );
  const guarded = await guardedAttempt(limits, { email, ip: attempt.ip }, refused, {
    check: () => deps.users.verifyPassword(email, attempt.password),
    failureReason: 'bad_credentials',
  });
  if (!('passed' in guarded)) return guarded;
  const user = guarded.passed;
  if (attempt.refuseUnconfirmedEmail && !user.emailVerified) {
    record('failure', 'sign_in', { reason: 'email_unconfirmed' }, user.id);
    return { user, emailUnconfirmed: true };
  }
  const secondFactor = deps.twoFactor.stepFor(user, attempt.secondFactorAsked);
  if (secondFactor !== 'none') {
    record('success', 'password_verified', { next: secondFactor === 'verify' ? 'totp' : 'totp_enrollment' }, user.id);
    return { user, secondFactor };
  }
  await limits.loginByAccount.reset(email);
  record('success', 'sign_in', { amr: ['pwd'] }, user.id);
  return { user };
}
