/**
 * The login page's second step, for users with two-step verification (src/accounts/two-factor.ts):
 *
 *   POST /interaction/:uid/login          right password → the step is kept with the interaction, 303 to its page
 *   GET  /interaction/:uid                the code form, the set-up page (QR code), or "it is on" after set-up
 *   POST /interaction/:uid/totp           an app's code → login result (amr pwd, otp, mfa); a recovery code →
 *                                         "N left", with an offer to set up a new app (a lost phone)
 *   POST /interaction/:uid/totp/replace   after a recovery code: set up a new app in place of the old one
 *   POST /interaction/:uid/totp/enroll    the first code from a new app → recovery codes shown once
 *   POST /interaction/:uid/totp/continue  after the recovery codes, or after a recovery code → login result
 *
 * Between the steps the state lives in the provider's Interaction record (its `result`, which the provider reads
 * only for `login`, `consent` and `error`): server-side, for the interaction's lifetime, tied to this browser by
 * the interaction cookie. Nothing reaches the provider's login result before the second factor is done.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { MFA_ACR, SECOND_FACTOR_REQUESTED, amrOf } from '../accounts/two-factor.js';
import { enrollmentOf, newTotpSecret } from '../accounts/totp.js';
import type { User } from '../accounts/users.js';
import { requestFacts } from '../audit/request-facts.js';
import { describeWait } from '../security/failure-limiter.js';
import { secondStepProved, verifySecondFactor } from '../security/second-factor-sign-in.js';
import { csrfToken } from './csrf.js';
import { PageError } from './errors.js';
import { clientShownAs } from './pages.js';
import type { InteractionDependencies } from './routes.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

interface PendingSecondFactor {
  accountId: string;
  email: string;
  remember: boolean;
  /**
   * `verify`: type a code; `enroll`: set up an app first; `enrolled`: set up, recovery codes shown; `recovered`:
   * signed in with a recovery code, offered a new app.
   */
  step: 'verify' | 'enroll' | 'enrolled' | 'recovered';
  /** While enrolling: the secret the QR code shows, sealed (./two-factor.ts), until a first code confirms it. */
  sealedSecret?: string;
  /** Once the second step is proved: how, as the login result's `amr`. */
  amr?: string[];
  /** Setting up a new app in place of the one set up (after a recovery code). */
  replacing?: boolean;
  /** After a recovery code: how many are left. */
  codesLeft?: number;
  /** How the first step was proved, when not by the password alone: `fed`, or `pwd` and `fed` (a link). */
  firstStep?: string[];
}

const pendingSchema = z.object({
  accountId: z.string(),
  email: z.string(),
  remember: z.boolean(),
  step: z.enum(['verify', 'enroll', 'enrolled', 'recovered']),
  sealedSecret: z.string().optional(),
  amr: z.array(z.string()).optional(),
  replacing: z.boolean().optional(),
  codesLeft: z.number().optional(),
  firstStep: z.array(z.string()).optional(),
});

/** The second step this interaction is at, if its password step is done. */
export function pendingSecondFactorOf(details: Interaction): PendingSecondFactor | undefined {
  const parsed = pendingSchema.safeParse((details.result as { secondFactor?: unknown } | undefined)?.secondFactor);
  return parsed.success ? parsed.data : undefined;
}

async function keep(details: Interaction, pending: PendingSecondFactor): Promise<void> {
  details.result = { secondFactor: pending } as unknown as InteractionResults;
  await details.persist();
}

/**
 * Step-up: the client requires a second factor or asked for one (acr_values), the session's sign-in had none,
 * and that is the only reason for this login prompt. The password was proved when the session began, so, as Keycloak does, only the
 * missing step is asked for: the signed-in user's code, or setting up their app. The session keeps its lifetime.
 */
export async function stepUpOf(deps: InteractionDependencies, details: Interaction): Promise<PendingSecondFactor | undefined> {
  const { reasons } = details.prompt;
  const accountId = details.session?.accountId;
  if (!accountId || reasons.length !== 1 || reasons[0] !== SECOND_FACTOR_REQUESTED) return undefined;
  const user = await deps.users.findById(accountId);
  const step = user && deps.twoFactor.stepFor(user, true);
  if (!user || !step || step === 'none') return undefined;
  const session = details.session?.cookie ? await deps.provider.Session.find(details.session.cookie) : undefined;
  const pending: PendingSecondFactor = { accountId, email: user.email, remember: !session?.transient, step };
  await keep(details, pending);
  return pending;
}

/**
 * After the right password (or another first step, `firstStep` its amr): remember who and which step, and show
 * the step's page (a GET, so reload is safe).
 */
export async function beginSecondFactor(ctx: Context, details: Interaction, user: User, step: 'verify' | 'enroll', remember: boolean, firstStep?: string[]) {
  await keepAndShow(ctx, details, { accountId: user.id, email: user.email, remember, step, firstStep });
}

/** The sign-in's `amr`: the second step's, with the first step's own methods where it was not the password alone. */
const amrWithFirstStep = (pending: PendingSecondFactor, amr: string[]) =>
  pending.firstStep ? [...new Set([...pending.firstStep, ...amr.filter((method) => method !== 'pwd')])] : amr;

async function keepAndShow(ctx: Context, details: Interaction, pending: PendingSecondFactor) {
  await keep(details, pending);
  ctx.status = 303;
  ctx.redirect(`/interaction/${encodeURIComponent(details.uid)}`);
}

type Finish = (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void>;

const codeForm = z.object({
  code: z.string('Enter the code.').trim().min(1, 'Enter the code.').max(32, 'That is not a code from your app or a recovery code.'),
});

export async function renderSecondFactor(
  ctx: Context,
  deps: InteractionDependencies,
  details: Interaction,
  pending: PendingSecondFactor,
  options: { error?: string; status?: number; recoveryCodes?: string[] } = {},
): Promise<void> {
  const common = { uid: details.uid, csrf: csrfToken(ctx.app.keys as string[], details.uid), client: await clientShownAs(deps, details), error: options.error };
  const status = options.status ?? 200;
  if (pending.step === 'verify') return deps.views.render(ctx, 'totp.njk', { ...common, passkeys: await hasPasskeys(deps, pending) }, status);
  if (pending.step === 'enrolled') return deps.views.render(ctx, 'totp-recovery.njk', { ...common, codes: options.recoveryCodes }, status);
  if (pending.step === 'recovered') return deps.views.render(ctx, 'totp-recovered.njk', { ...common, codesLeft: pending.codesLeft }, status);
  const secret = await enrollingSecret(deps, details, pending);
  const { qrSvg } = enrollmentOf(secret, pending.email, new URL(deps.config.issuer).host);
  const secretGroups = secret.match(/.{1,4}/g)?.join(' ') ?? secret;
  deps.views.render(ctx, 'totp-enroll.njk', { ...common, qrSvg, secretGroups, replacing: pending.replacing, passkeys: !pending.replacing && (await hasPasskeys(deps, pending)) }, status);
}

/** Whether the second step's page offers the account's passkey in place of a code (./passkey-sign-in.ts). */
async function hasPasskeys(deps: InteractionDependencies, pending: PendingSecondFactor): Promise<boolean> {
  return deps.passkeys.available && (await deps.passkeys.list(pending.accountId)).length > 0;
}

/** The secret shown for setting up, made on the first showing and kept so that a reload shows the same QR code. */
async function enrollingSecret(deps: InteractionDependencies, details: Interaction, pending: PendingSecondFactor): Promise<string> {
  const kept = pending.sealedSecret && deps.twoFactor.unseal(pending.sealedSecret, pending.accountId);
  if (kept) return kept;
  const secret = newTotpSecret();
  await keep(details, { ...pending, sealedSecret: deps.twoFactor.seal(secret, pending.accountId) });
  return secret;
}

/** A first set-up proved the second step (its first code): the sign-in it completes, with its `amr`. */
async function signedInWithNewApp(deps: InteractionDependencies, ctx: Context, pending: PendingSecondFactor): Promise<string[]> {
  const amr = amrOf('otp');
  const signIn = {
    user: { id: pending.accountId, email: pending.email },
    clientId: String((ctx.state.interaction as Interaction).params.client_id),
    facts: requestFacts(ctx),
  };
  await secondStepProved(deps, signIn, amr, { enrolled: true });
  return amr;
}

/** The routes of the second step, on the interaction router; `interaction` loads and checks the interaction. */
export function addSecondFactorRoutes(
  router: Router,
  deps: InteractionDependencies,
  steps: { readForm: Middleware; interaction: Middleware; finish: Finish },
): void {
  const { readForm, interaction, finish } = steps;
  const pendingAt = (ctx: Context, ...allowed: PendingSecondFactor['step'][]) => {
    const pending = pendingSecondFactorOf(ctx.state.interaction as Interaction);
    if (!pending || !allowed.includes(pending.step)) {
      throw new PageError(400, 'This step of the sign-in is not the one you are at. Reload the page to continue.', {
        href: `/interaction/${encodeURIComponent(ctx.params.uid ?? '')}`,
        label: 'Continue signing in',
      });
    }
    return pending;
  };

  router.post('/totp', readForm, interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const pending = pendingAt(ctx, 'verify');
    const form = codeForm.safeParse(ctx.request.body);
    if (!form.success) return renderSecondFactor(ctx, deps, details, pending, { error: form.error.issues[0]?.message, status: 400 });
    const outcome = await verifySecondFactor(deps, {
      user: { id: pending.accountId, email: pending.email },
      code: form.data.code,
      ip: ctx.ip,
      clientId: String(details.params.client_id),
      facts: requestFacts(ctx),
    });
    if ('lockedMs' in outcome) {
      ctx.set('Retry-After', String(Math.ceil(outcome.lockedMs / 1000)));
      const error = `Too many failed sign-in attempts. Try again in ${describeWait(outcome.lockedMs)}.`;
      return renderSecondFactor(ctx, deps, details, pending, { error, status: 429 });
    }
    if ('rejected' in outcome) {
      const error = 'That code is not right, or was used already. Wait for the next code in your app and try again.';
      return renderSecondFactor(ctx, deps, details, pending, { error, status: 400 });
    }
    if (outcome.method === 'recovery') {
      // A recovery code is most often a lost phone: offer a new app now rather than sending them to an administrator.
      const recovered: PendingSecondFactor = { ...pending, step: 'recovered', amr: outcome.amr, codesLeft: outcome.codesLeft };
      await keep(details, recovered);
      return renderSecondFactor(ctx, deps, details, recovered);
    }
    await finish(ctx, { login: { accountId: pending.accountId, amr: amrWithFirstStep(pending, outcome.amr), acr: MFA_ACR, remember: pending.remember } }, false);
  });

  router.post('/totp/replace', readForm, interaction, async (ctx) => {
    const pending = pendingAt(ctx, 'recovered');
    await keepAndShow(ctx, ctx.state.interaction as Interaction, { ...pending, step: 'enroll', replacing: true, codesLeft: undefined });
  });

  router.post('/totp/enroll', readForm, interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const pending = pendingAt(ctx, 'enroll');
    const form = codeForm.safeParse(ctx.request.body);
    if (!form.success) return renderSecondFactor(ctx, deps, details, pending, { error: form.error.issues[0]?.message, status: 400 });
    const secret = pending.sealedSecret && deps.twoFactor.unseal(pending.sealedSecret, pending.accountId);
    if (!secret) return renderSecondFactor(ctx, deps, details, pending, { error: 'The set-up expired. Scan the new code and try again.', status: 400 });
    const enrolled = await deps.twoFactor.enroll(pending.accountId, secret, form.data.code, pending.replacing);
    if (enrolled === 'wrong-code') {
      const error = 'That code does not match. Check that your app shows this account, then type its current code.';
      return renderSecondFactor(ctx, deps, details, pending, { error, status: 400 });
    }
    if (enrolled === 'changed-meanwhile' && pending.replacing) {
      throw new PageError(409, 'Your two-step verification was changed meanwhile, by an administrator or another sign-in. Go back to the application and sign in again.');
    }
    if (enrolled === 'changed-meanwhile') {
      // Another sign-in set up an app meanwhile: that one stands, and this sign-in asks for its code.
      await keep(details, { ...pending, step: 'verify', sealedSecret: undefined });
      return renderSecondFactor(ctx, deps, details, { ...pending, step: 'verify' }, { error: 'Two-step verification was set up meanwhile from another sign-in: enter a code from that app.', status: 409 });
    }
    deps.audit.record({
      type: 'totp_enrolled',
      outcome: 'success',
      accountId: pending.accountId,
      clientId: String(details.params.client_id),
      ...requestFacts(ctx),
      detail: { email: pending.email, recoveryCodes: enrolled.length, ...(pending.replacing ? { replaced: true } : {}) },
    });
    // A first set-up is this sign-in's second step; a replacement follows a recovery code that already was.
    const amr = pending.amr ?? (await signedInWithNewApp(deps, ctx, pending));
    const done: PendingSecondFactor = { ...pending, step: 'enrolled', sealedSecret: undefined, amr };
    await keep(details, done);
    return renderSecondFactor(ctx, deps, details, done, { recoveryCodes: enrolled });
  });

  router.post('/totp/continue', readForm, interaction, async (ctx) => {
    const pending = pendingAt(ctx, 'enrolled', 'recovered');
    const amr = amrWithFirstStep(pending, pending.amr ?? amrOf('otp'));
    await finish(ctx, { login: { accountId: pending.accountId, amr, acr: MFA_ACR, remember: pending.remember } }, false);
  });
}
