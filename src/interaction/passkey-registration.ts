/**
 * Creating an account with a passkey instead of a password (REGISTRATION=open, on a host that can have passkeys):
 * the registration page's "Create account with a passkey instead".
 *
 *   POST /interaction/:uid/register/passkey/options  name, email (and the terms ticked) → the options for
 *                                                    navigator.credentials.create(), as JSON; refusals as {error}
 *   POST /interaction/:uid/register/passkey          the browser's new credential → the account and its passkey,
 *                                                    made together; signed in, on to the app
 *
 * The account's id is chosen with the options, since the passkey holds it as its user handle, and kept with the
 * interaction beside the challenge, the address and the name, so the answer cannot change them; it works once.
 * The account is made only when the passkey checks out, in one transaction with it, and counts against the IP's
 * allowance as a password registration does, as does asking for options with a taken address. It has no password: the passkey (two factors on its own) signs it
 * in, and the account page adds more passkeys, a password or other sign-ins (src/self-service/).
 */
import { randomUUID } from 'node:crypto';
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { CEREMONY_TIMEOUT_MS, NO_PASSKEY, type Passkey, type PasskeyRefusal, newChallenge, passkeyAmr } from '../accounts/passkeys.js';
import { MFA_ACR } from '../accounts/two-factor.js';
import type { User } from '../accounts/users.js';
import { requestFacts } from '../audit/request-facts.js';
import { ConflictError } from '../errors.js';
import { PageError } from './errors.js';
import { keepWithInteraction, takeFromInteraction } from './interaction-state.js';
import { keepSignedIn } from './pages.js';
import {
  EMAIL_TAKEN,
  accountForm,
  mailConfirmationLink,
  refuseUnlessOpen,
  registrationLimitRefusal,
  renderRegistration,
  termsRefusal,
} from './registration.js';
import type { InteractionDependencies } from './routes.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;
type Finish = (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void>;

/** What the options were made for, kept with the interaction until the answer comes. */
const keptRegistration = z.object({ id: z.uuid(), email: z.string(), name: z.string().optional(), challenge: z.string(), expiresAt: z.number() });
type KeptRegistration = z.infer<typeof keptRegistration>;

const answerForm = z.object({ credential: z.string().max(64 * 1024), remember: z.string().max(16).optional() });

const EXPIRED = 'Creating the passkey took too long, or was started in another tab. Try again.';

/** Thrown inside the account's transaction to undo it when its passkey cannot be kept. */
class PasskeyNotKept extends Error {
  constructor(readonly refusal: PasskeyRefusal) {
    super(refusal.reason);
  }
}

/** Where the options' account is kept in the interaction's result (./interaction-state.ts). */
const KEPT_AS = 'passkeyRegistration';

/** Takes what the options were made for out of the interaction, so an answer works once; undefined when gone. */
async function take(details: Interaction): Promise<KeptRegistration | undefined> {
  const kept = await takeFromInteraction(details, KEPT_AS, keptRegistration);
  return kept && kept.expiresAt > Date.now() ? kept : undefined;
}

export function addPasskeyRegistrationRoutes(router: Router, deps: InteractionDependencies, steps: { readForm: Middleware; interaction: Middleware; finish: Finish }): void {
  const { readForm, interaction, finish } = steps;
  const { passkeys, config } = deps;
  const offered: Middleware = (_ctx, next) => {
    refuseUnlessOpen(deps);
    if (!passkeys.available) throw new PageError(404, 'Passkeys are not available on this server.');
    return next();
  };
  const refuseJson = (ctx: Context, status: number, error: string) => {
    ctx.status = status;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error };
  };

  router.post('/register/passkey/options', offered, readForm, interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const form = accountForm.safeParse(ctx.request.body);
    if (!form.success) return refuseJson(ctx, 400, form.error.issues[0]?.message ?? 'The form was not complete.');
    const terms = termsRefusal(config, form.data.terms);
    if (terms) return refuseJson(ctx, 400, terms);
    const email = form.data.email.toLowerCase();
    if (await deps.users.findByEmail(email)) {
      // As with a password: a taken address counts against the IP's allowance, so this is no free oracle of addresses.
      deps.audit.record({ type: 'user_registered', outcome: 'failure', clientId: String(details.params.client_id), ...requestFacts(ctx), detail: { email, via: 'passkey', reason: 'email_taken' } });
      const tooMany = await registrationLimitRefusal(ctx, deps);
      return refuseJson(ctx, tooMany ? 429 : 409, tooMany ?? EMAIL_TAKEN);
    }
    const kept = { id: randomUUID(), email, name: form.data.name || undefined, challenge: newChallenge(), expiresAt: Date.now() + CEREMONY_TIMEOUT_MS };
    await keepWithInteraction(details, KEPT_AS, kept);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await passkeys.creationOptions({ id: kept.id, email, name: kept.name ?? null }, kept.challenge);
  });

  router.post('/register/passkey', offered, readForm, interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const kept = await take(details);
    const form = answerForm.safeParse(ctx.request.body);
    const remember = keepSignedIn(config.rememberMe, form.success ? form.data.remember : undefined);
    const refuse = (error: string, status = 400) => renderRegistration(ctx, deps, details, { email: kept?.email, name: kept?.name, remember, error, status });
    if (!kept) return refuse(EXPIRED);
    if (!form.success) return refuse(NO_PASSKEY);
    const tooMany = await registrationLimitRefusal(ctx, deps);
    if (tooMany) return refuse(tooMany, 429);
    const clientId = String(details.params.client_id);
    const audit = (outcome: 'success' | 'failure', user: User | undefined, detail: Record<string, unknown>) =>
      deps.audit.record({ type: 'user_registered', outcome, accountId: user?.id, clientId, ...requestFacts(ctx), detail: { email: kept.email, via: 'passkey', ...detail } });

    const checked = await passkeys.checkRegistration({ credential: form.data.credential, challenge: kept.challenge });
    if ('refused' in checked) {
      audit('failure', undefined, { reason: `passkey_${checked.reason}` });
      return refuse(checked.refused);
    }
    let made: { user: User; also: Passkey };
    try {
      made = await deps.users.createWithoutPassword(
        { id: kept.id, email: kept.email, name: kept.name, roles: config.registration.roles, termsVersion: config.terms?.version },
        async (trx, user) => {
          const passkey = await passkeys.keep(trx, user.id, checked);
          if ('refused' in passkey) throw new PasskeyNotKept(passkey);
          return passkey;
        },
      );
    } catch (error) {
      if (error instanceof ConflictError) {
        audit('failure', undefined, { reason: 'email_taken' });
        return refuse(EMAIL_TAKEN, 409);
      }
      if (!(error instanceof PasskeyNotKept)) throw error;
      audit('failure', undefined, { reason: `passkey_${error.refusal.reason}` });
      return refuse(error.refusal.refused);
    }
    const { user, also: passkey } = made;
    audit('success', user, {});
    deps.audit.record({ type: 'passkey_added', outcome: 'success', accountId: user.id, ...requestFacts(ctx), detail: { by: 'self', passkey: passkey.name, synced: passkey.backedUp, authenticator: passkey.authenticator } });
    mailConfirmationLink(deps, user);
    // A passkey is two factors: no second step follows, whatever the app or a role asks.
    const amr = passkeyAmr(passkey.backedUp);
    deps.audit.record({ type: 'sign_in', outcome: 'success', accountId: user.id, clientId, ...requestFacts(ctx), detail: { email: user.email, amr, via: 'registration' } });
    await finish(ctx, { login: { accountId: user.id, amr, acr: MFA_ACR, remember } }, false);
  });

  router.get(['/register/passkey', '/register/passkey/options'], (ctx) => {
    ctx.status = 303;
    ctx.redirect(`/interaction/${encodeURIComponent(ctx.params.uid ?? '')}/register`);
  });
}
