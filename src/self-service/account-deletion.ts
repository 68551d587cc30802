/**
 * Deleting one's own account (ACCOUNT_DELETION, off unless turned on, as Keycloak's "Delete Account"):
 *
 *   POST /account/delete   the current password and "I understand" ticked → the account is gone, signed out
 *
 * The password is checked under the sign-in's limits, as for every change that cannot be undone from this page (an
 * account without one must have signed in within the last five minutes: ./re-authentication.ts).
 * What goes, and what the apps are told, is UserRepository.remove's: the account, its passkeys, consents,
 * refresh tokens and sessions; apps with a back-channel logout URI get logout tokens.
 */
import type { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { readForm } from '../http/read-form.js';
import { PageError } from '../interaction/errors.js';
import { renderAccountPage } from './page.js';
import { WRONG_PASSWORD, checkOwner, currentPasswordField, refuse } from './re-authentication.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';

const deleteForm = z.object({
  current: currentPasswordField.optional(),
  understood: z.literal('yes', 'Tick the box to say you understand that this cannot be undone.'),
});

export function addAccountDeletionRoutes(router: Router, deps: AccountDependencies, signedIn: Middleware): void {
  const offered: Middleware = async (_ctx, next) => {
    if (!deps.config.accountDeletion) throw new PageError(404, 'Accounts are deleted by an administrator here: ask yours.', { href: '/account', label: 'Back to your account' });
    return next();
  };

  router.post('/delete', readForm, offered, signedIn, async (ctx) => {
    const signedInAs = ctx.state.signedIn as SignedIn;
    const form = deleteForm.safeParse(ctx.request.body);
    if (!form.success) {
      const error = form.error.issues[0]?.message ?? 'The form was not complete.';
      return renderAccountPage(ctx, deps, signedInAs, { errors: { deletion: error }, status: 400 });
    }
    const checked = await checkOwner(ctx, deps, form.data.current);
    if (!('passed' in checked)) return refuse(ctx, deps, checked, 'deletion', WRONG_PASSWORD);
    const user = await deps.users.remove(signedInAs.user.id);
    deps.views.render(ctx, 'account-deleted.njk', { email: user.email });
  });

  router.get('/delete', (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account#delete');
  });
}
