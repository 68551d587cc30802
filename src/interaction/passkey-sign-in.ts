/**
 * Signing in with a passkey from the login page (src/accounts/passkeys.ts), instead of email and password:
 *
 *   POST /interaction/:uid/passkey/options  → the options for navigator.credentials.get(), as JSON; the challenge
 *                                             is kept with the interaction
 *   POST /interaction/:uid/passkey          the browser's answer (`credential`) → login result (amr hwk or swk,
 *                                             user, mfa; the two-step acr)
 *
 * The page's script (views/assets/passkeys.js) asks for the options when the person presses "Sign in with a
 * passkey", or when the page loads where the browser offers passkeys in the email field's autofill, and posts the
 * answer as an ordinary form. A challenge works once: it is taken from the interaction before the answer is
 * checked, so an answer posted twice fails the second time. A passkey is two factors, so the sign-in needs no
 * second step even where the app or a role requires one.
 *
 * The second step's page (after the password, or a step-up) offers the account's own passkey in place of a code
 * from an app: there the options allow only that account's passkeys, and another account's is refused.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { CEREMONY_TIMEOUT_MS, NO_PASSKEY, newChallenge } from '../accounts/passkeys.js';
import { requestFacts } from '../audit/request-facts.js';
import { describeWait } from '../security/failure-limiter.js';
import { signInWithPasskey } from '../security/passkey-sign-in.js';
import { PageError } from './errors.js';
import { keepWithInteraction, takeFromInteraction } from './interaction-state.js';
import { keepSignedIn, renderLogin } from './pages.js';
import type { InteractionDependencies } from './routes.js';
import { pendingSecondFactorOf, renderSecondFactor } from './second-factor.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;
type Finish = (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void>;

/** The challenge kept with the interaction between the options and the answer. */
const keptChallenge = z.object({ challenge: z.string(), expiresAt: z.number() });

const answerForm = z.object({
  credential: z.string().max(64 * 1024),
  /** The "Keep me signed in" box, copied from the password form by the script: sent only when ticked. */
  remember: z.string().max(16).optional(),
});

/** Keeps `challenge` with the interaction, beside what its result already holds (a pending second step). */
async function keepChallenge(details: Interaction, challenge: string): Promise<void> {
  const kept: z.infer<typeof keptChallenge> = { challenge, expiresAt: Date.now() + CEREMONY_TIMEOUT_MS };
  await keepWithInteraction(details, 'passkey', kept);
}

/** Takes the kept challenge out of the interaction, so that it works once; undefined when none is kept or it expired. */
async function takeChallenge(details: Interaction): Promise<string | undefined> {
  const kept = await takeFromInteraction(details, 'passkey', keptChallenge);
  return kept && kept.expiresAt > Date.now() ? kept.challenge : undefined;
}

export function addPasskeySignInRoutes(router: Router, deps: InteractionDependencies, steps: { readForm: Middleware; interaction: Middleware; finish: Finish }): void {
  const { readForm, interaction, finish } = steps;
  const { passkeys } = deps;

  const available: Middleware = (_ctx, next) => {
    if (!passkeys.available) throw new PageError(404, 'Passkeys are not available on this server.');
    return next();
  };

  router.post('/passkey/options', available, readForm, interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const pending = pendingSecondFactorOf(details);
    const challenge = newChallenge();
    await keepChallenge(details, challenge);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await passkeys.requestOptions(challenge, pending ? await passkeys.list(pending.accountId) : []);
  });

  router.post('/passkey', available, readForm, interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const form = answerForm.safeParse(ctx.request.body);
    // At the second step, "Keep me signed in" was answered with the password.
    const pending = pendingSecondFactorOf(details);
    const remember = pending ? pending.remember : keepSignedIn(deps.config.rememberMe, form.success ? form.data.remember : undefined);
    /** The login page again, or the second step's page when the password is done, with `error`. */
    const refuse = (error: string, status: number) =>
      pending ? renderSecondFactor(ctx, deps, details, pending, { error, status }) : renderLogin(ctx, deps, details, { error, remember, status });
    const challenge = await takeChallenge(details);
    if (!form.success || !challenge) {
      const error = challenge ? NO_PASSKEY : 'The passkey request expired or was used already. Try again.';
      return refuse(error, 400);
    }
    const outcome = await signInWithPasskey(deps, {
      credential: form.data.credential,
      challenge,
      ip: ctx.ip,
      clientId: String(details.params.client_id),
      facts: requestFacts(ctx),
    });
    if ('lockedMs' in outcome) {
      ctx.set('Retry-After', String(Math.ceil(outcome.lockedMs / 1000)));
      return refuse(`Too many failed sign-in attempts. Try again in ${describeWait(outcome.lockedMs)}.`, 429);
    }
    if ('refused' in outcome) return refuse(outcome.refused, 400);
    // The second step is this account's: a passkey of another account does not finish it.
    if (pending && pending.accountId !== outcome.user.id) return refuse('That passkey is for another account. Use your own, or a code from your app.', 400);
    await finish(ctx, { login: { accountId: outcome.user.id, amr: outcome.amr, acr: outcome.acr, remember } }, false);
  });
}
