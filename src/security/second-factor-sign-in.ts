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

export interface SecondFactorAttempt {
  user: Pick<User, 'id' | 'email'>;
  code: string;
  ip: string;
  clientId: string;
  facts: { ip: string | null; userAgent: string | null; requestId: string | null };
}

export async function verifySecondFactor(
  deps: { twoFactor: TwoFactor; limits: SecurityLimits; audit: AuditSink },
  attempt: SecondFactorAttempt,
): Promise<SecondFactorOutcome> {
  const { limits, twoFactor } = deps;
  const { email, id } = attempt.user;
  const record = (outcome: 'success' | 'failure', type: string, detail: Record<string, unknown>) =>
    deps.audit.record({ type, outcome, accountId: id, clientId: attempt.clientId, ...attempt.facts, detail: { email, ...detail } });

  const guarded = await guardedAttempt(limits, { email, ip: attempt.ip }, record, {
    check: () => twoFactor.verify(id, attempt.code),
    failureReason: 'bad_second_factor',
    lockedDetail: { step: 'totp' },
  });
  if (!('passed' in guarded)) return guarded;
  const method = guarded.passed;
  await limits.loginByAccount.reset(email);
  const amr = amrOf(method);
  const codesLeft = method === 'recovery' ? await twoFactor.recoveryCodesLeft(id) : undefined;
  record('success', 'sign_in', { amr, ...(codesLeft === undefined ? {} : { recoveryCodesLeft: codesLeft }) });
  return { amr, method, codesLeft };
}
