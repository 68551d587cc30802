/**
 * A sign-in with a passkey (src/accounts/passkeys.ts), the one way the login page checks one. Unlike a password, a
 * passkey cannot be guessed, so an account locked by wrong passwords still signs in with its passkey: the lock
 * stops guessing, not the owner (an attacker spraying someone's address would otherwise lock them out). A locked
 * IP is still refused, and a refused passkey counts against the IP, so the endpoint is no free signature oracle.
 * A disabled account is refused. Every outcome is audited.
 */
import { MFA_ACR } from '../accounts/two-factor.js';
import type { Passkeys } from '../accounts/passkeys.js';
import type { User, UserRepository } from '../accounts/users.js';
import type { AuditSink } from '../audit/audit-log.js';
import type { SecurityLimits } from './limits.js';

export type PasskeySignInOutcome = { user: User; amr: string[]; acr: string } | { lockedMs: number } | { refused: string };

export interface PasskeyAttempt {
  /** The browser's answer to the challenge, as the form sent it. */
  credential: unknown;
  challenge: string;
  ip: string;
  clientId: string;
  facts: { ip: string | null; userAgent: string | null; requestId: string | null };
}

const NOT_AVAILABLE = 'That passkey cannot be used to sign in here. Sign in with your password instead.';

export async function signInWithPasskey(
  deps: { passkeys: Passkeys; users: UserRepository; limits: SecurityLimits; audit: AuditSink },
  attempt: PasskeyAttempt,
): Promise<PasskeySignInOutcome> {
  const record = (outcome: 'success' | 'failure', detail: Record<string, unknown>, user?: Pick<User, 'id' | 'email'>) =>
    deps.audit.record({
      type: 'sign_in',
      outcome,
      accountId: user?.id,
      clientId: attempt.clientId,
      ...attempt.facts,
      detail: { ...(user ? { email: user.email } : {}), via: 'passkey', ...detail },
    });

  const locked = await deps.limits.loginByIp.lockedFor(attempt.ip);
  if (locked > 0) {
    record('failure', { reason: 'locked' });
    return { lockedMs: locked };
  }
  const proved = await deps.passkeys.authenticate({ credential: attempt.credential, challenge: attempt.challenge });
  const user = proved.userId === undefined ? undefined : await deps.users.findById(proved.userId);
  if ('refused' in proved || !user || user.disabledAt) {
    const lockMs = await deps.limits.loginByIp.fail(attempt.ip);
    if ('refused' in proved) record('failure', { reason: `passkey_${proved.reason}` }, user);
    else record('failure', { reason: 'disabled', passkey: proved.passkey.name }, user);
    if (lockMs > 0) return { lockedMs: lockMs };
    return { refused: 'refused' in proved ? proved.refused : NOT_AVAILABLE };
  }
  record('success', { amr: proved.amr, passkey: proved.passkey.name }, user);
  return { user, amr: proved.amr, acr: MFA_ACR };
}
