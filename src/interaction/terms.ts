/**
 * The terms of service at the sign-in (the `accept_terms` prompt, src/oidc/terms-prompt.ts), as at Keycloak's
 * "Terms and Conditions" required action:
 *
 *   GET  /interaction/:uid                 "Terms of service": a link to TERMS_URL, Accept or Decline
 *   POST /interaction/:uid/accept-terms    → accepted (this version, now; audited terms_accepted), on to the app
 *   POST /interaction/:uid/abort           Decline → back to the app with access_denied
 *
 * Accepting is recorded against the version shown: a page left open while the version changed accepts nothing
 * and shows the new one.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { TERMS_PROMPT } from '../oidc/terms-prompt.js';
import { csrfToken } from './csrf.js';
import { PageError } from './errors.js';
import { clientShownAs, signedInAccountOf } from './pages.js';
import type { InteractionDependencies } from './routes.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const acceptForm = z.object({ version: z.string().max(64) });

/** The configured terms; a page error when there are none (the prompt is not in the policy then). */
function termsOf(deps: InteractionDependencies): { url: string; version: string } {
  if (!deps.config.terms) throw new PageError(404, 'This server has no terms of service to accept.');
  return deps.config.terms;
}

export async function renderTerms(ctx: Context, deps: InteractionDependencies, details: Interaction, status = 200) {
  const terms = termsOf(deps);
  const user = await signedInAccountOf(deps, details);
  deps.views.render(
    ctx,
    'terms.njk',
    {
      uid: details.uid,
      csrf: csrfToken(ctx.app.keys as string[], details.uid),
      client: await clientShownAs(deps, details),
      email: user.email,
      terms,
      // Accepted before, in another version: the page says the terms changed.
      updated: user.termsAccepted !== null,
    },
    status,
  );
}

export function addTermsRoutes(
  router: Router,
  deps: InteractionDependencies,
  steps: { readForm: Middleware; interaction: Middleware; finish: (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void> },
): void {
  router.post('/accept-terms', steps.readForm, steps.interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const terms = termsOf(deps);
    const form = acceptForm.safeParse(ctx.request.body);
    if (!form.success || form.data.version !== terms.version) return renderTerms(ctx, deps, details, 409);
    const user = await signedInAccountOf(deps, details);
    await deps.users.acceptTerms(user.id, terms.version);
    await steps.finish(ctx, { [TERMS_PROMPT]: { accepted: terms.version } }, true);
  });
}
