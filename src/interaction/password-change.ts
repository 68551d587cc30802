/**
 * A temporary or expired (PASSWORD_MAX_AGE) password replaced at the sign-in (the `update_password` prompt,
 * src/oidc/password-change-prompt.ts), as at Keycloak's "Update Password" required action:
 *
 *   GET  /interaction/:uid                   "Choose a new password", once the sign-in (any way) has succeeded
 *   POST /interaction/:uid/update-password   the new password twice → changed, on to the app
 *
 * The person has just signed in, so the page asks for no current password. The new one must pass the password
 * rules and differ from the current one, which whoever gave a temporary one knows (and, with PASSWORD_HISTORY,
 * from the ones before it). Sessions and apps stay (an
 * administrator's new password ended them already).
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { changeUnlessReused } from '../accounts/password-history.js';
import { newPasswordFields } from '../accounts/passwords.js';
import { PASSWORD_CHANGE_PROMPT } from '../oidc/password-change-prompt.js';
import { csrfToken } from './csrf.js';
import { clientShownAs, signedInAccountOf } from './pages.js';
import type { InteractionDependencies } from './routes.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const changeForm = z.object(newPasswordFields);

export async function renderPasswordChange(ctx: Context, deps: InteractionDependencies, details: Interaction, options: { error?: string; status?: number } = {}) {
  const user = await signedInAccountOf(deps, details);
  deps.views.render(
    ctx,
    'password-change.njk',
    {
      uid: details.uid,
      csrf: csrfToken(ctx.app.keys as string[], details.uid),
      client: await clientShownAs(deps, details),
      email: user.email,
      // Not a temporary one: a password past PASSWORD_MAX_AGE (../accounts/password-expiry.ts).
      expiredAfterDays: user.passwordChangeRequired ? undefined : Math.round(deps.config.passwords.maxAgeSeconds / 86_400),
      error: options.error,
    },
    options.status ?? 200,
  );
}

export function addPasswordChangeRoutes(
  router: Router,
  deps: InteractionDependencies,
  steps: { readForm: Middleware; interaction: Middleware; finish: (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void> },
): void {
  router.post('/update-password', steps.readForm, steps.interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const user = await signedInAccountOf(deps, details);
    const refuse = (error: string | undefined) => renderPasswordChange(ctx, deps, details, { error, status: 400 });
    const form = changeForm.safeParse(ctx.request.body);
    if (!form.success) return refuse(form.error.issues[0]?.message);
    const problem = await deps.users.newPasswordRefusal(form.data.password, form.data.repeat, user);
    if (problem) return refuse(problem);
    // Whoever gave a temporary one knows it: keeping it would keep their way in.
    if (await deps.users.verifyPassword(user.email, form.data.password)) return refuse('Choose a password other than your current one.');
    const change = await changeUnlessReused(deps.users.changePassword(user.id, form.data.password, { by: 'self', via: 'sign_in', clientId: String(details.params.client_id) }));
    if ('refusal' in change) return refuse(change.refusal);
    await steps.finish(ctx, { [PASSWORD_CHANGE_PROMPT]: { changed: true } }, true);
  });
}
