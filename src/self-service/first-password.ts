/**
 * A first password, for an account that has none: one made by another identity provider's sign-in, or imported
 * without one (Keycloak's "Set up password"). There is no current password to ask for, so the session must have
 * signed in within the last few minutes instead; an older one is sent to sign in again first (prompt=login), and
 * comes back to the form. An account that has a password changes it with the current one (./routes.ts).
 *
 *   GET  /account/password/set-up   a fresh sign-in, then the page's Password section
 *   POST /account/password          (no password yet) the new one twice → set
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { changeUnlessReused } from '../accounts/password-history.js';
import { newPasswordFields } from '../accounts/passwords.js';
import { renderAccountPage } from './page.js';
import { SIGN_IN_AGAIN, signedInRecently } from './re-authentication.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';

const firstPasswordForm = z.object(newPasswordFields);

/** POST /account/password from an account without a password; `done` redirects to the page with its notice. */
export async function setFirstPassword(ctx: Context, deps: AccountDependencies, signedIn: SignedIn, done: (ctx: Context) => void): Promise<void> {
  const refuse = (error: string, status = 400) => renderAccountPage(ctx, deps, signedIn, { errors: { password: error }, status });
  if (!signedInRecently(signedIn.session)) return refuse(SIGN_IN_AGAIN, 403);
  const form = firstPasswordForm.safeParse(ctx.request.body);
  if (!form.success) return refuse(form.error.issues[0]?.message ?? 'The form was not complete.');
  const problem = await deps.users.newPasswordRefusal(form.data.password, form.data.repeat, signedIn.user);
  if (problem) return refuse(problem);
  const change = await changeUnlessReused(deps.users.changePassword(signedIn.user.id, form.data.password, { first: true }));
  if ('refusal' in change) return refuse(change.refusal);
  done(ctx);
}
