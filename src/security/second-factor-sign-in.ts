/**
 * The second step of a sign-in (src/accounts/two-factor.ts): a code from the user's authenticator app or a recovery
 * code, after their password. It goes through the same brute-force limits as the password (a wrong code counts
 * against the account and the IP, and a locked account is refused before the code is looked at), so the million
 * six-digit codes cannot be tried; a success clears the account's count and is the audited `sign_in`.
 */
import { type SecondFactorMethod, type TwoFactor, amrOf } from '../accounts/two-factor.js';
import type { User } from '../accounts/users.js';
import type { AuditSink } from '../audit/audit-log.js';
import { guardedAttempt } from './guarded-attempt.js';
import type { SecurityLimits } from './limits.js';

/** `codesLeft`: after a recovery code, how many the user has left. */
export type SecondFactorOutcome = { amr: string[]; method: SecondFactorMethod; codesLeft?: number } | { lockedMs: number } | { rejected: true };

/** Who signs in, through which client, from where (as the audit log records it). */
export interface SecondFactorSignIn {
  user: Pick<User, 'id' | 'email'>;
  clientId: string;
  facts: { ip: string | null; userAgent: string | null; requestId: string | null };
}

export interface SecondFactorAttempt extends SecondFactorSignIn {
  code: string;
  ip: string;
}

/**
 * The second step proved, by a code or by setting up an app: the account's failure count is cleared and this is
 * the audited `sign_in` (the password alone was only `password_verified`).
 */
export async function secondStepProved(
  deps: { limits: SecurityLimits; audit: AuditSink },
  signIn: SecondFactorSignIn,
  amr: string[],
  detail: Record<string, unknown> = {},
): Promise<void> {
  const { email, id } = signIn.user;
  await deps.limits.loginByAccount.reset(email);
  deps.audit.record({ type: 'sign_in', outcome: 'success', accountId: id, clientId: signIn.clientId, ...signIn.facts, detail: { email, amr, ...detail } });
}

export async function verifySecondFactor(
  deps: { twoFactor: TwoFactor; limits: SecurityLimits; audit: AuditSink },
  attempt: SecondFactorAttempt,
): Promise<SecondFactorOutcome> {
  const { limits, twoFactor } = deps;
  const { email, id } = attempt.user;
  const record = (outcome: 'failure', type: string, detail: Record<string, unknown>) =>
    deps.audit.record({ type, outcome, accountId: id, clientId: attempt.clientId, ...attempt.facts, detail: { email, ...detail } });

  const guarded = await guardedAttempt(limits, { email, ip: attempt.ip }, record, {
    check: () => twoFactor.verify(id, attempt.code),
    failureReason: 'bad_second_factor',
    lockedDetail: { step: 'totp' },
  });
  if (!('passed' in guarded)) return guarded;
  const method = guarded.passed;
  const amr = amrOf(method);
  const codesLeft = method === 'recovery' ? await twoFactor.recoveryCodesLeft(id) : undefined;
  await secondStepProved(deps, attempt, amr, codesLeft === undefined ? {} : { recoveryCodesLeft: codesLeft });
  return { amr, method, codesLeft };
}
