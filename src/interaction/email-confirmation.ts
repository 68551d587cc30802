/**
 * EMAIL_CONFIRMATION_REQUIRED: a signed-in account whose address is not confirmed waits here, between its login
 * and the app (the `confirm_email` prompt, src/oidc/email-confirmation-prompt.ts), as at Keycloak's "Verify email":
 *
 *   GET  /interaction/:uid                          "Confirm your email": a link is mailed the first time it shows
 *   POST /interaction/:uid/confirm-email/send       another link, under the per-address and per-IP limits
 *   POST /interaction/:uid/confirm-email/continue   on to the app once the address is confirmed (the link may have
 *                                                   been opened on another device); the page again until then
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { User } from '../accounts/users.js';
import { requestFacts } from '../audit/request-facts.js';
import { linkMailFor } from '../mail/link-mails.js';
import { CONFIRM_EMAIL_PROMPT } from '../oidc/email-confirmation-prompt.js';
import { describeWait } from '../security/failure-limiter.js';
import { refuseEmailLink } from '../security/limits.js';
import { csrfToken } from './csrf.js';
import { clientShownAs, signedInAccountOf } from './pages.js';
import type { InteractionDependencies } from './routes.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

interface ConfirmationPageOptions {
  notice?: string;
  error?: string;
  status?: number;
}

/**
 * Mails a confirmation link to the account. The link is made before the page answers (so that the page shown again
 * finds it and mails no second one); the mail goes out off the request path.
 */
async function mailConfirmationLink(ctx: Context, deps: InteractionDependencies, user: User): Promise<void> {
  if (!deps.outbox) return;
  const { mail } = await linkMailFor(deps.emailLinks, deps.config.issuer, user, 'email_confirmation');
  deps.audit.record({ type: 'email_link_requested', outcome: 'success', accountId: user.id, ...requestFacts(ctx), detail: { purpose: 'email_confirmation', email: user.email } });
  deps.outbox.post(async () => mail);
}

/** The page; the first time it shows for an account without a working link, a link is mailed. */
export async function renderEmailConfirmation(ctx: Context, deps: InteractionDependencies, details: Interaction, options: ConfirmationPageOptions = {}) {
  const user = await signedInAccountOf(deps, details);
  if (!options.notice && !options.error && !(await deps.emailLinks.hasLive(user.id, 'email_confirmation'))) await mailConfirmationLink(ctx, deps, user);
  deps.views.render(
    ctx,
    'confirm-email.njk',
    {
      uid: details.uid,
      csrf: csrfToken(ctx.app.keys as string[], details.uid),
      client: await clientShownAs(deps, details),
      email: user.email,
      validFor: describeWait(deps.emailLinks.ttlSeconds * 1000),
      notice: options.notice,
      error: options.error,
    },
    options.status ?? 200,
  );
}

export function addEmailConfirmationRoutes(
  router: Router,
  deps: InteractionDependencies,
  steps: { readForm: Middleware; interaction: Middleware; finish: (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void> },
): void {
  router.post('/confirm-email/send', steps.readForm, steps.interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const user = await signedInAccountOf(deps, details);
    const tooMany = await refuseEmailLink(ctx, deps.limits, user.email);
    if (tooMany) return renderEmailConfirmation(ctx, deps, details, { error: tooMany, status: 429 });
    await mailConfirmationLink(ctx, deps, user);
    await renderEmailConfirmation(ctx, deps, details, { notice: `We sent another link to ${user.email}.` });
  });

  router.post('/confirm-email/continue', steps.readForm, steps.interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const user = await signedInAccountOf(deps, details);
    if (!user.emailVerified) {
      const error = 'Your address is not confirmed yet. Open the link in the mail we sent, press Confirm, then continue here.';
      return renderEmailConfirmation(ctx, deps, details, { error, status: 400 });
    }
    await steps.finish(ctx, { [CONFIRM_EMAIL_PROMPT]: { confirmed: true } }, true);
  });
}
