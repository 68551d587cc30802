/**
 * What a person does through a link sent by mail (src/accounts/email-links.ts), signed in or not:
 *
 *   GET  /account/password-reset           "Forgot your password?": the address to send a link to
 *   POST /account/password-reset           → "check your mail", the same answer whether or not an account has it
 *   GET  /account/password-reset/new       the mail's link (?token=): the new-password form
 *   POST /account/password-reset/new       → password changed; sessions ended and passkeys removed when ticked;
 *                                          sign-in lock lifted
 *   POST /account/email/send-confirmation  (signed in) a link to confirm the account's address
 *   GET  /account/email/confirm            the mail's link (?token=): a button that confirms
 *   POST /account/email/confirm            → address confirmed
 *
 * A link's GET changes nothing, so a mail scanner that opens links spends none; only the form it shows does. The
 * link's secret, in that form, is what a cross-site post cannot know, so those forms need no other CSRF token; the
 * form that asks for a link has none either, as a forged post could only mail a link to the address's owner.
 * Links are asked for under per-address and per-IP limits, and mail goes out off the request path
 * (src/mail/outbox.ts). With mail off (production without SMTP_URL) every one of these pages says so.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { EmailLinkPurpose } from '../accounts/email-links.js';
import { changeUnlessReused } from '../accounts/password-history.js';
import { newPasswordFields } from '../accounts/passwords.js';
import type { User } from '../accounts/users.js';
import { requestFacts } from '../audit/request-facts.js';
import { readForm } from '../http/read-form.js';
import { PageError } from '../interaction/errors.js';
import { describeWait } from '../security/failure-limiter.js';
import { refuseEmailLink } from '../security/limits.js';
import { linkMailFor } from '../mail/link-mails.js';
import type { OutgoingMail } from '../mail/outbox.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';

const addressForm = z.object({
  email: z.string('Enter your email.').trim().min(1, 'Enter your email.').max(254, 'That email address is too long.').toLowerCase(),
});
const newPasswordForm = z.object({
  token: z.string().max(100),
  ...newPasswordFields,
  /** "Sign out of every session": sent only when ticked. */
  endSessions: z.string().max(16).optional(),
  /** "Also remove my passkeys": sent only when ticked (offered only to an account that has some). */
  removePasskeys: z.string().max(16).optional(),
});
const tokenForm = z.object({ token: z.string().max(100) });

/** Interaction uids are nanoids; anything else is not put in a link back to the sign-in. */
const interactionUid = (value: unknown) => (typeof value === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(value) ? value : undefined);

const LINK_GONE = 'This link has expired or was used already. Ask for a new one.';

export function addEmailLinkPages(router: Router, deps: AccountDependencies, signedIn: Middleware): void {
  const { config, views } = deps;
  const validFor = describeWait(deps.emailLinks.ttlSeconds * 1000);

  /** Every page here needs mail; without it each says what to do instead. */
  const outbox = () => {
    if (!deps.outbox) throw new PageError(404, 'This server does not send mail, so this cannot be done by mail. Ask your administrator.');
    return deps.outbox;
  };

  /** The link's user, while the link works and still applies (a reset link is void once the password changed). */
  const linkUser = async (token: unknown, purpose: EmailLinkPurpose) => {
    const link = await deps.emailLinks.find(token, purpose);
    const user = link && (await deps.users.findById(link.userId));
    const stale = purpose === 'password_reset' && user?.passwordChangedAt && link && user.passwordChangedAt > link.createdAt;
    if (!link || !user || user.disabledAt || stale) {
      const again = purpose === 'password_reset' ? { href: '/account/password-reset', label: 'Send me a new link' } : { href: '/account', label: 'Go to your account' };
      throw new PageError(400, LINK_GONE, again);
    }
    return user;
  };

  /** Posts the mail for `purpose` to the user with that address, if there is one who may have it. */
  const postLinkMail = (ctx: Context, email: string, purpose: EmailLinkPurpose) => {
    const facts = requestFacts(ctx);
    outbox().post(async (): Promise<OutgoingMail | undefined> => {
      const user = await deps.users.findByEmail(email);
      const refused = !user ? 'unknown_email' : user.disabledAt ? 'disabled' : undefined;
      deps.audit.record({ type: 'email_link_requested', outcome: refused ? 'failure' : 'success', accountId: user?.id, ...facts, detail: { purpose, email, ...(refused && { reason: refused }) } });
      if (!user || refused) return undefined;
      return (await linkMailFor(deps.emailLinks, config.issuer, user, purpose)).mail;
    });
  };

  router.get('/password-reset', (ctx) => {
    outbox();
    views.render(ctx, 'password-reset.njk', { from: interactionUid(ctx.query.from), email: '' });
  });

  router.post('/password-reset', readForm, async (ctx) => {
    outbox();
    const form = addressForm.safeParse(ctx.request.body);
    const from = interactionUid((ctx.request.body as Record<string, unknown> | undefined)?.from);
    if (!form.success || !form.data.email.includes('@')) {
      const error = form.success ? 'Enter your email address, such as name@example.com.' : (form.error.issues[0]?.message ?? 'Enter your email.');
      return views.render(ctx, 'password-reset.njk', { from, error, email: form.data?.email ?? '' }, 400);
    }
    const tooMany = await refuseEmailLink(ctx, deps.limits, form.data.email);
    if (tooMany) return views.render(ctx, 'password-reset.njk', { from, error: tooMany, email: form.data.email }, 429);
    postLinkMail(ctx, form.data.email, 'password_reset');
    views.render(ctx, 'password-reset-sent.njk', { from, email: form.data.email, validFor });
  });

  /** The new-password form of a reset link; the passkeys box only for an account that has some. */
  const renderNewPasswordForm = async (ctx: Context, user: User, token: unknown, error?: string) => {
    const passkeys = deps.passkeys.available ? (await deps.passkeys.list(user.id)).length : 0;
    views.render(ctx, 'password-reset-new.njk', { token, email: user.email, twoStep: Boolean(user.totpEnrolledAt), passkeys, error }, error ? 400 : 200);
  };

  router.get('/password-reset/new', async (ctx) => {
    outbox();
    const user = await linkUser(ctx.query.token, 'password_reset');
    await renderNewPasswordForm(ctx, user, ctx.query.token);
  });

  router.post('/password-reset/new', readForm, async (ctx) => {
    outbox();
    const form = newPasswordForm.safeParse(ctx.request.body);
    if (!form.success) throw new PageError(400, form.error.issues[0]?.message ?? 'The form was not complete.', { href: '/account/password-reset', label: 'Start again' });
    const { token, password, repeat, endSessions, removePasskeys } = form.data;
    // Checked before the new password is hashed: a post with a made-up link costs a lookup, not a bcrypt hash.
    const before = await linkUser(token, 'password_reset');
    const problem = await deps.users.newPasswordRefusal(password, repeat, before);
    if (problem) return renderNewPasswordForm(ctx, before, token, problem);
    const reset = await changeUnlessReused(deps.users.resetPassword(before.id, (trx) => deps.emailLinks.redeem(trx, token, 'password_reset'), password));
    if ('refusal' in reset) return renderNewPasswordForm(ctx, before, token, reset.refusal);
    const user = reset.changed;
    if (!user) throw new PageError(400, LINK_GONE, { href: '/account/password-reset', label: 'Send me a new link' });
    const sessions = await tidyAfterReset(deps, user, { endSessions: endSessions !== undefined, removePasskeys: removePasskeys !== undefined });
    const detail = {
      endedSessions: sessions.ended,
      ...(sessions.left && { sessionsNotEnded: 'store_unavailable' }),
      ...(sessions.removedPasskeys !== undefined && { removedPasskeys: sessions.removedPasskeys }),
    };
    deps.audit.record({ type: 'password_reset', outcome: 'success', accountId: user.id, ...requestFacts(ctx), detail });
    views.render(ctx, 'password-reset-done.njk', {
      email: user.email,
      endedSessions: sessions.ended,
      sessionsLeft: sessions.left,
      removedPasskeys: sessions.removedPasskeys,
      twoStep: Boolean(user.totpEnrolledAt),
    });
  });

  router.post('/email/send-confirmation', readForm, signedIn, async (ctx) => {
    outbox();
    const { user } = ctx.state.signedIn as SignedIn;
    if (user.emailVerified) return redirectToAccount(ctx, 'email-confirmed');
    const tooMany = await refuseEmailLink(ctx, deps.limits, user.email);
    if (tooMany) throw new PageError(429, tooMany, { href: '/account', label: 'Back to your account' });
    postLinkMail(ctx, user.email, 'email_confirmation');
    redirectToAccount(ctx, 'confirmation-sent');
  });

  router.get('/email/confirm', async (ctx) => {
    outbox();
    const user = await linkUser(ctx.query.token, 'email_confirmation');
    views.render(ctx, 'email-confirm.njk', { token: ctx.query.token, email: user.email });
  });

  router.post('/email/confirm', readForm, async (ctx) => {
    outbox();
    const form = tokenForm.safeParse(ctx.request.body);
    const user = form.success ? await deps.users.confirmEmail((trx) => deps.emailLinks.redeem(trx, form.data.token, 'email_confirmation')) : undefined;
    if (!user) throw new PageError(400, LINK_GONE, { href: '/account', label: 'Go to your account' });
    views.render(ctx, 'email-confirmed.njk', { email: user.email });
  });

  // A refused form's address reloaded is a GET: back to the start.
  router.get('/email/send-confirmation', (ctx) => redirectToAccount(ctx));
}

/**
 * After a reset: the sign-in lock lifted (whoever was locking the account out by guessing guessed at the old
 * password), the sessions ended when asked, and the passkeys removed when asked (someone who had the old password
 * may have added one, which would outlive it). The password is changed by then, so a failure here (a store down
 * this moment) is logged and told on the page, rather than answered as if the change had failed.
 */
async function tidyAfterReset(
  deps: AccountDependencies,
  user: User,
  asked: { endSessions: boolean; removePasskeys: boolean },
): Promise<{ ended: boolean; left: boolean; removedPasskeys?: number }> {
  const { endSessions } = asked;
  const tidy = (step: Promise<unknown>, what: string) =>
    step.then(
      () => true,
      (error: unknown) => {
        deps.logger.warn({ err: error, accountId: user.id }, `password reset: ${what} failed`);
        return false;
      },
    );
  await tidy(deps.locks.unlockAccount(user), 'lifting the sign-in lock');
  const ended = endSessions && (await tidy(deps.sessions.endAll(user.id), 'ending the sessions'));
  const removedPasskeys = asked.removePasskeys ? await deps.passkeys.removeAll(user.id, 'self') : undefined;
  return { ended, left: endSessions && !ended, removedPasskeys };
}

function redirectToAccount(ctx: Context, notice?: string): void {
  ctx.status = 303;
  ctx.redirect(notice ? `/account?done=${notice}` : '/account');
}
