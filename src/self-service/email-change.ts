/**
 * Changing the account's email address from the account page (Keycloak's "update email"): the new address is the
 * one people sign in with from then on, so it must be shown to be the person's before it replaces the old one.
 *
 *   POST /account/email/change           new address + current password → a link mailed to the new address
 *   GET  /account/email/change/confirm   the mail's link (?token=): a button, so a mail scanner changes nothing
 *   POST /account/email/change/confirm   → the new address replaces the old (confirmed); the old one is told
 *
 * The current password is checked under the sign-in's limits, or, for an account without one, a sign-in within the
 * last five minutes (./re-authentication.ts): a session left open is not enough to take the account. Links count
 * against the mail limits of the new address and the IP, and the old address gets a notice without a link: a
 * change its owner did not make does not go unnoticed. Sessions and apps stay.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { requestFacts } from '../audit/request-facts.js';
import { ConflictError } from '../errors.js';
import { readForm } from '../http/read-form.js';
import { PageError } from '../interaction/errors.js';
import { linkMailFor } from '../mail/link-mails.js';
import { emailChangedNotice } from '../mail/messages.js';
import { refuseEmailLink } from '../security/limits.js';
import { renderAccountPage } from './page.js';
import { WRONG_PASSWORD, checkOwner, currentPasswordField, refuse } from './re-authentication.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';

const changeForm = z.object({
  email: z.email({ error: 'Enter the new address, such as name@example.com.' }).max(254, 'That email address is too long.'),
  current: currentPasswordField.optional(),
});
const tokenForm = z.object({ token: z.string().max(100) });

const LINK_GONE = 'This link has expired or was used already. Change your address again from your account.';
const toAccount = { href: '/account', label: 'Go to your account' };

export function addEmailChangeRoutes(router: Router, deps: AccountDependencies, signedIn: Middleware): void {
  const { config, views } = deps;
  const outbox = () => {
    if (!deps.outbox) throw new PageError(404, 'This server does not send mail, so your address cannot be changed here. Ask your administrator.');
    return deps.outbox;
  };
  const error = (ctx: Context, message: string, status = 400) => renderAccountPage(ctx, deps, ctx.state.signedIn as SignedIn, { errors: { email: message }, status });

  router.post('/email/change', readForm, signedIn, async (ctx) => {
    const mail = outbox();
    const { user } = ctx.state.signedIn as SignedIn;
    const form = changeForm.safeParse(ctx.request.body);
    if (!form.success) return error(ctx, form.error.issues[0]?.message ?? 'The form was not complete.');
    const email = form.data.email.toLowerCase();
    if (email === user.email) return error(ctx, 'That is your address already.');
    const checked = await checkOwner(ctx, deps, form.data.current);
    if (!('passed' in checked)) return refuse(ctx, deps, checked, 'email', WRONG_PASSWORD);
    // Asked once the password is right, so that the page tells whether an address is taken only to the account's owner.
    if (await deps.users.findByEmail(email)) return error(ctx, 'Another account uses that address.', 409);
    const tooMany = await refuseEmailLink(ctx, deps.limits, email);
    if (tooMany) return error(ctx, tooMany, 429);
    const { mail: message } = await linkMailFor(deps.emailLinks, config.issuer, user, 'email_change', { sendTo: email });
    deps.audit.record({ type: 'email_link_requested', outcome: 'success', accountId: user.id, ...requestFacts(ctx), detail: { purpose: 'email_change', email } });
    mail.post(async () => message);
    ctx.status = 303;
    ctx.redirect('/account?done=email-change-sent#email');
  });

  router.get('/email/change/confirm', async (ctx) => {
    outbox();
    const link = await deps.emailLinks.find(ctx.query.token, 'email_change');
    const user = link && (await deps.users.findById(link.userId));
    if (!link || !user || user.disabledAt) throw new PageError(400, LINK_GONE, toAccount);
    views.render(ctx, 'email-change-confirm.njk', { token: ctx.query.token, from: user.email, to: link.email });
  });

  router.post('/email/change/confirm', readForm, async (ctx) => {
    const mail = outbox();
    const form = tokenForm.safeParse(ctx.request.body);
    const changed = form.success
      ? await deps.users.changeEmail((trx) => deps.emailLinks.redeem(trx, form.data.token, 'email_change')).catch((failure: unknown) => {
          if (failure instanceof ConflictError) throw new PageError(409, 'Another account uses that address now, so it cannot be yours here.', toAccount);
          throw failure;
        })
      : undefined;
    if (!changed) throw new PageError(400, LINK_GONE, toAccount);
    const { user, previousEmail } = changed;
    const notice = emailChangedNotice({ to: previousEmail, issuer: config.issuer, account: user.email });
    mail.post(async () => ({ ...notice, kind: 'email_changed', accountId: user.id }));
    views.render(ctx, 'email-changed.njk', { email: user.email });
  });

  router.get('/email/change', (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account#email');
  });
}
