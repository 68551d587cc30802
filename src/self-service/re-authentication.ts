/**
 * Checks the account page makes before a change that could lock the person out or hand the account to someone
 * else: the current password, or a code from the authenticator app, under the sign-in's brute-force limits, so the
 * page is no way around them. Failures are audited as the login page's are, `via: account`. An account without a
 * password (signed in with a passkey or another identity provider) proves itself by having signed in within the
 * last five minutes instead: a session left open is no way to change it either.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { requestFacts } from '../audit/request-facts.js';
import { hasOwnPassword } from '../accounts/users.js';
import { ACCOUNT_CONSOLE_CLIENT_ID } from '../clients/account-console.js';
import { describeWait } from '../security/failure-limiter.js';
import { type GuardedOutcome, guardedAttempt } from '../security/guarded-attempt.js';
import { type AccountPageOptions, renderAccountPage } from './page.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';

/** What a form says of a wrong current password. */
export const WRONG_PASSWORD = 'That is not your current password.';

/** What a form of an account without a password says when its session did not sign in just now. */
export const SIGN_IN_AGAIN = 'Sign in again first: your account has no password, so this is done only right after signing in.';

/** How recent a sign-in must be to stand for a password: Keycloak's default for setting up a credential. */
const RECENT_SIGN_IN_SECONDS = 5 * 60;

/** Whether the session signed in (or signed in again) recently enough to change the account without a password. */
export function signedInRecently(session: SignedIn['session']): boolean {
  return typeof session.loginTs === 'number' && Date.now() / 1000 - session.loginTs <= RECENT_SIGN_IN_SECONDS;
}

/** The outcome of a check: passed, locked, wrong, not complete, or (without a password) a sign-in too long ago. */
export type OwnerCheck = GuardedOutcome<unknown> | { invalid: string } | { signInAgain: true };

/** A password or code checked under the sign-in's limits; failures are audited as the login page's are. */
export function guardedCheck<T>(ctx: Context, deps: AccountDependencies, email: string, failureReason: string, check: () => Promise<T | undefined>) {
  const { user } = ctx.state.signedIn as SignedIn;
  const record = (outcome: 'failure', type: string, detail: Record<string, unknown>) =>
    deps.audit.record({ type, outcome, accountId: user.id, clientId: ACCOUNT_CONSOLE_CLIENT_ID, ...requestFacts(ctx), detail: { email, via: 'account', ...detail } });
  return guardedAttempt(deps.limits, { email, ip: ctx.ip }, record, { check, failureReason });
}

/** The page again with the section's error: locked (429, with when to retry), wrong (400), or not complete. */
export function refuse(
  ctx: Context,
  deps: AccountDependencies,
  outcome: { lockedMs: number } | { rejected: true } | { invalid: string } | { signInAgain: true },
  section: keyof NonNullable<AccountPageOptions['errors']>,
  wrong: string,
): Promise<void> {
  const signedIn = ctx.state.signedIn as SignedIn;
  if ('signInAgain' in outcome) return renderAccountPage(ctx, deps, signedIn, { errors: { [section]: SIGN_IN_AGAIN }, status: 403 });
  if ('lockedMs' in outcome) {
    ctx.set('Retry-After', String(Math.ceil(outcome.lockedMs / 1000)));
    const error = `Too many wrong attempts. Try again in ${describeWait(outcome.lockedMs)}.`;
    return renderAccountPage(ctx, deps, signedIn, { errors: { [section]: error }, status: 429 });
  }
  const error = 'invalid' in outcome ? outcome.invalid : wrong;
  return renderAccountPage(ctx, deps, signedIn, { errors: { [section]: error }, status: 400 });
}

/** The current password, as each form that asks for it takes it (a password too long to be anyone's is wrong). */
export const currentPasswordField = z
  .string('Enter your current password.')
  .min(1, 'Enter your current password.')
  .max(1024, WRONG_PASSWORD);

/** The signed-in person's current password, checked under the sign-in's limits. */
export function checkCurrentPassword(ctx: Context, deps: AccountDependencies, presented: string) {
  const { user } = ctx.state.signedIn as SignedIn;
  return guardedCheck(ctx, deps, user.email, 'bad_credentials', () => deps.users.verifyPassword(user.email, presented));
}

/**
 * That the signed-in person owns the account: their current password where it has one (`presented`, from the
 * form's optional `current`), or else a sign-in just now.
 */
export async function checkOwner(ctx: Context, deps: AccountDependencies, presented: string | undefined): Promise<OwnerCheck> {
  const { user, session } = ctx.state.signedIn as SignedIn;
  if (!hasOwnPassword(user)) return signedInRecently(session) ? { passed: true } : { signInAgain: true };
  if (presented === undefined) return { invalid: 'Enter your current password.' };
  return checkCurrentPassword(ctx, deps, presented);
}

const codeForm = z.object({
  code: z.string('Enter a code from your app.').trim().min(1, 'Enter a code from your app.').max(32, 'That is not a code from your app or a recovery code.'),
});

/** A code from the authenticator app, or a recovery code, from the form's `code`, checked under the limits. */
export async function checkCode(ctx: Context, deps: AccountDependencies): Promise<GuardedOutcome<unknown> | { invalid: string }> {
  const { user } = ctx.state.signedIn as SignedIn;
  if (!user.totpEnrolledAt) return { invalid: 'Two-step verification is not set up for your account.' };
  const form = codeForm.safeParse(ctx.request.body);
  if (!form.success) return { invalid: form.error.issues[0]?.message ?? 'Enter a code from your app.' };
  return guardedCheck(ctx, deps, user.email, 'bad_second_factor', () => deps.twoFactor.verify(user.id, form.data.code));
}
