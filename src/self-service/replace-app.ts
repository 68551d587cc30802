/**
 * A new authenticator app in place of the old one, from the account page (a new phone), without turning two-step
 * verification off in between:
 *
 *   POST /account/two-step/replace          a code from the old app, or a recovery code → the new app's QR code
 *   POST /account/two-step/replace/confirm  the first code from the new app → it replaces the old; new recovery codes
 *
 * The old app keeps working until the new one's first code is accepted. The new secret travels in the form sealed
 * for this user (AES-GCM under the pepper, src/accounts/two-factor.ts): the browser holds it but cannot read it,
 * and it opens for no other account.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { enrollmentOf, newTotpSecret } from '../accounts/totp.js';
import { requestFacts } from '../audit/request-facts.js';
import { readForm } from '../http/read-form.js';
import { csrfToken } from '../interaction/csrf.js';
import { PageError } from '../interaction/errors.js';
import { renderNewRecoveryCodes } from './page.js';
import { checkCode, refuse } from './re-authentication.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';

const confirmForm = z.object({
  sealed: z.string().min(1).max(1000),
  code: z.string('Enter the code your new app shows.').trim().min(1, 'Enter the code your new app shows.').max(32),
});

const START_AGAIN = { href: '/account#two-step', label: 'Back to your account' };

export function addReplaceAppRoutes(router: Router, deps: AccountDependencies, signedIn: Middleware): void {
  /** The page with the new app's QR code and key; `sealed` is the secret it shows, sealed for this user. */
  const showNewApp = (ctx: Context, secret: string, sealed: string, error?: string) => {
    const { user, session } = ctx.state.signedIn as SignedIn;
    const { qrSvg } = enrollmentOf(secret, user.email, new URL(deps.config.issuer).host);
    const variables = { csrf: csrfToken(ctx.app.keys as string[], session.uid, 'account'), qrSvg, secretGroups: secret.match(/.{1,4}/g)?.join(' ') ?? secret, sealed, error };
    deps.views.render(ctx, 'account-replace-app.njk', variables, error ? 400 : 200);
  };

  router.post('/two-step/replace', readForm, signedIn, async (ctx) => {
    const { user } = ctx.state.signedIn as SignedIn;
    const checked = await checkCode(ctx, deps);
    if (!('passed' in checked)) return refuse(ctx, deps, checked, 'replaceApp', 'That code is not right. Enter the code your old app shows now, or a recovery code.');
    const secret = newTotpSecret();
    showNewApp(ctx, secret, deps.twoFactor.seal(secret, user.id));
  });

  router.post('/two-step/replace/confirm', readForm, signedIn, async (ctx) => {
    const { user } = ctx.state.signedIn as SignedIn;
    const form = confirmForm.safeParse(ctx.request.body);
    const secret = form.success ? deps.twoFactor.unseal(form.data.sealed, user.id) : undefined;
    if (!form.success || !secret) throw new PageError(400, 'This set-up is not valid any more. Start again from your account.', START_AGAIN);
    const enrolled = await deps.twoFactor.enroll(user.id, secret, form.data.code, true);
    if (enrolled === 'wrong-code') return showNewApp(ctx, secret, form.data.sealed, 'That code is not right. Enter the code your new app shows now.');
    if (enrolled === 'changed-meanwhile') throw new PageError(409, 'Two-step verification was changed meanwhile (in another window, or by an administrator).', START_AGAIN);
    deps.audit.record({
      type: 'totp_enrolled',
      outcome: 'success',
      accountId: user.id,
      ...requestFacts(ctx),
      detail: { email: user.email, recoveryCodes: enrolled.length, replaced: true, by: 'self' },
    });
    renderNewRecoveryCodes(ctx, deps, enrolled, { replacedApp: true });
  });

  router.get(['/two-step/replace', '/two-step/replace/confirm'], (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account#two-step');
  });
}
