/**
 * Our login, consent and abort routes under /interaction/:uid. oidc-provider sends the browser here whenever it
 * needs a person (interactions.url); each handler reads the interaction, does one thing, and hands the result
 * back to the provider, which continues the authorization request.
 *
 *   GET  /interaction/:uid          the page the prompt asks for (login or consent)
 *   POST /interaction/:uid/login    email + password  → login result
 *   POST /interaction/:uid/confirm  consent           → grant saved, consent result
 *   POST /interaction/:uid/abort    "Cancel" / "Deny" → access_denied back to the client
 *
 * With two-step verification the login has a second step between the password and the result: ./second-factor.ts.
 * With REGISTRATION=open, a person without an account makes one from the login page: ./registration.ts. With
 * EMAIL_CONFIRMATION_REQUIRED, an account waits between its login and the app until its address is confirmed:
 * ./email-confirmation.ts. With a passkey, a person signs in without the password: ./passkey-sign-in.ts. With
 * another identity provider (IDENTITY_PROVIDERS_FILE), a person signs in there: ./federated-sign-in.ts. After the
 * login, a temporary password is replaced (./password-change.ts) and the terms of service accepted (./terms.ts).
 */
import { createHmac } from 'node:crypto';
import { Router } from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import type { EmailLinks } from '../accounts/email-links.js';
import type { Passkeys } from '../accounts/passkeys.js';
import { type TwoFactor, secondFactorWanted } from '../accounts/two-factor.js';
import type { UserRepository } from '../accounts/users.js';
import type { AuditSink } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import type { Config } from '../config.js';
import { readForm } from '../http/read-form.js';
import type { Logger } from '../logger.js';
import type { MailOutbox } from '../mail/outbox.js';
import type { Catalog } from '../oidc/catalog.js';
import { describeWait } from '../security/failure-limiter.js';
import type { SecurityLimits } from '../security/limits.js';
import { signInWithPassword } from '../security/password-sign-in.js';
import { keepSignedIn, renderConsent, renderLogin } from './pages.js';
import { csrfTokenValid } from './csrf.js';
import { forgetUpstreamSignIn } from '../federation/logout.js';
import { PageError, pageErrors } from './errors.js';
import { markSignInEnded, rememberSignIn, rememberedSignInOf, restartPathOf } from './restart.js';
import { CONFIRM_EMAIL_PROMPT } from '../oidc/email-confirmation-prompt.js';
import { PASSWORD_CHANGE_PROMPT } from '../oidc/password-change-prompt.js';
import { TERMS_PROMPT } from '../oidc/terms-prompt.js';
import { addEmailConfirmationRoutes, renderEmailConfirmation } from './email-confirmation.js';
import { addPasswordChangeRoutes, renderPasswordChange } from './password-change.js';
import { addPasskeyRegistrationRoutes } from './passkey-registration.js';
import { addTermsRoutes, renderTerms } from './terms.js';
import { addPasskeySignInRoutes } from './passkey-sign-in.js';
import { addFederatedSignInRoutes, followedIdpHint, pendingLinkOf, renderLinkPage } from './federated-sign-in.js';
import type { LinkedIdentities } from '../federation/linked-identities.js';
import type { UpstreamProviders } from '../federation/upstream.js';
import type { AppDescriptions } from '../client-registration/app-descriptions.js';
import { addRegistrationRoutes, renderRegistration } from './registration.js';
import { CREATE_PROMPT } from '../oidc/create-prompt.js';
import { addSecondFactorRoutes, beginSecondFactor, pendingSecondFactorOf, renderSecondFactor, stepUpOf } from './second-factor.js';
import type { Views } from './views.js';

export interface InteractionDependencies {
  provider: Provider;
  users: UserRepository;
  twoFactor: TwoFactor;
  catalog: Catalog;
  audit: AuditSink;
  limits: SecurityLimits;
  config: Config;
  logger: Logger;
  views: Views;
  /** Links sent by mail: password reset, email confirmation (src/self-service/email-link-pages.ts). */
  emailLinks: EmailLinks;
  /** Where mail is posted; undefined when the server sends none (production without SMTP_URL). */
  outbox?: MailOutbox;
  /** Passkeys: signing in with one (./passkey-sign-in.ts), and the account page's list of them. */
  passkeys: Passkeys;
  /** Other identity providers to sign in with (./federated-sign-in.ts), and the accounts linked to them. */
  upstream: UpstreamProviders;
  linkedIdentities: LinkedIdentities;
  /** What the consent page says of an app that registered itself (src/client-registration/app-descriptions.ts). */
  appDescriptions?: AppDescriptions;
}

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const WRONG_CREDENTIALS = 'That email and password do not match an account.';

/** Each refusal is a sentence for the person at the form; a password too long to be anyone's does not match. */
const loginForm = z.object({
  email: z.string('Enter your email.').trim().min(1, 'Enter your email.').max(254, 'That email address is too long.'),
  password: z.string('Enter your password.').min(1, 'Enter your password.').max(1024, WRONG_CREDENTIALS),
  /** The "Keep me signed in" box: sent only when ticked. */
  remember: z.string().max(16).optional(),
});

/** What the person typed, to fill in again when the form is refused before any check of the password. */
function typedBefore(body: unknown): { email?: string; remember: boolean } {
  const { email, remember } = (body ?? {}) as Record<string, unknown>;
  return { email: typeof email === 'string' ? email.slice(0, 1024) : undefined, remember: remember !== undefined };
}

/** The step an interaction is at: prompt=create's is the login's, begun at the registration page. */
const stepOf = (details: Interaction) => (details.prompt.name === CREATE_PROMPT ? 'login' : details.prompt.name);

export function createInteractionRoutes(deps: InteractionDependencies): Middleware {
  const { provider, views, logger } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  /**
   * Loads the interaction, checks it is in the expected prompt and (for posts) checks the CSRF token. prompt=create
   * is the login step begun at the registration page: whatever signs in there may be used.
   */
  const interaction = (expectedPrompt?: string) => async (ctx: Context, next: Next) => {
    const details = await provider.interactionDetails(ctx.req, ctx.res).catch(async (error: unknown) => {
      if ((error as Error).name === 'SessionNotFound') throw (await endedSignInPage(deps, ctx)) ?? error;
      throw error;
    });
    if (details.uid !== ctx.params.uid || (expectedPrompt && stepOf(details) !== expectedPrompt)) {
      // An earlier step's page (Back after signing in) or another tab's: this browser's sign-in now is `details`,
      // and its own page shows the step it is at.
      const current = { href: `/interaction/${encodeURIComponent(details.uid)}`, label: `Continue signing in to ${await clientNameOf(deps, details)}` };
      throw new PageError(400, 'This page is from a step of the sign-in that is already done, or from another sign-in in this browser.', current);
    }
    if (ctx.method === 'POST' && !csrfTokenValid(ctx.app.keys as string[], details.uid, (ctx.request.body as Record<string, unknown>)?.csrf)) {
      throw new PageError(403, 'The form expired or did not come from this site. Reload the page and try again.');
    }
    ctx.state.interaction = details;
    return next();
  };

  const finish = async (ctx: Context, result: InteractionResults, merge: boolean) => {
    // Signed in by other means than a provider: nothing to sign out of there later (src/federation/logout.ts).
    if (result.login && !result.login.amr?.includes('fed')) forgetUpstreamSignIn(ctx, deps.config.production);
    // oidc-provider asks again for a prompt the result does not name: prompt=create is answered by this sign-in.
    const answered = (ctx.state.interaction as Interaction).prompt.name === CREATE_PROMPT ? { ...result, [CREATE_PROMPT]: {} } : result;
    const location = await provider.interactionResult(ctx.req, ctx.res, answered, { mergeWithLastSubmission: merge });
    markSignInEnded(ctx, (ctx.state.interaction as Interaction).uid, result.error ? 'cancelled' : 'done');
    ctx.status = 303;
    ctx.redirect(location);
  };

  router.use(pageErrors(views, logger));

  router.get('/', interaction(), async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    rememberSignIn(ctx, details, restartPathOf(provider, details));
    const step = stepOf(details);
    const secondFactor = step === 'login' ? (pendingSecondFactorOf(details) ?? (await stepUpOf(deps, details))) : undefined;
    if (secondFactor) return renderSecondFactor(ctx, deps, details, secondFactor);
    const link = step === 'login' ? pendingLinkOf(details) : undefined;
    if (link) return renderLinkPage(ctx, deps, details, link);
    // prompt=create opens at the registration page, whose "I have an account" link comes back with ?step=sign-in.
    if (details.prompt.name === CREATE_PROMPT && ctx.query.step !== 'sign-in') return renderRegistration(ctx, deps, details);
    if (step === 'login' && (await followedIdpHint(ctx, deps, details))) return;
    if (step === 'login') return renderLogin(ctx, deps, details);
    if (details.prompt.name === 'consent') return renderConsent(ctx, deps, details);
    if (details.prompt.name === CONFIRM_EMAIL_PROMPT) return renderEmailConfirmation(ctx, deps, details);
    if (details.prompt.name === PASSWORD_CHANGE_PROMPT) return renderPasswordChange(ctx, deps, details);
    if (details.prompt.name === TERMS_PROMPT) return renderTerms(ctx, deps, details);
    throw new PageError(400, `This server cannot handle the "${details.prompt.name}" step.`);
  });

  // After a failed sign-in the address bar shows the form's action; reloading or reopening it is a GET, which
  // the form's step cannot take: the interaction's own page can (it shows the form again, or says what ended).
  router.get(['/login', '/confirm', '/abort', '/totp', '/totp/enroll', '/totp/replace', '/totp/continue', '/confirm-email/send', '/confirm-email/continue', '/update-password', '/accept-terms', '/passkey', '/passkey/options', '/federated/:provider', '/federated/link/cancel'], (ctx) => {
    ctx.status = 303;
    ctx.redirect(`/interaction/${encodeURIComponent(ctx.params.uid ?? '')}`);
  });

  router.post('/login', readForm, interaction('login'), async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const form = loginForm.safeParse(ctx.request.body);
    if (!form.success) return renderLogin(ctx, deps, details, { error: form.error.issues[0]?.message, ...typedBefore(ctx.request.body), status: 400 });
    const email = form.data.email.toLowerCase();
    const remember = keepSignedIn(deps.config.rememberMe, form.data.remember);
    const outcome = await signInWithPassword(deps, {
      email,
      password: form.data.password,
      ip: ctx.ip,
      clientId: String(details.params.client_id),
      facts: requestFacts(ctx),
      secondFactorAsked: secondFactorWanted(details.params, await deps.catalog.client(String(details.params.client_id))),
    });
    if ('lockedMs' in outcome) {
      ctx.set('Retry-After', String(Math.ceil(outcome.lockedMs / 1000)));
      const error = `Too many failed sign-in attempts. Try again in ${describeWait(outcome.lockedMs)}.`;
      return renderLogin(ctx, deps, details, { error, email, remember, status: 429 });
    }
    if ('rejected' in outcome) {
      return renderLogin(ctx, deps, details, { error: WRONG_CREDENTIALS, email, remember, status: 400 });
    }
    const { user } = outcome;
    if (outcome.secondFactor) return beginSecondFactor(ctx, details, user, outcome.secondFactor, remember);
    // `remember: false` makes oidc-provider set the session cookie without an expiry: it ends with the browser.
    await finish(ctx, { login: { accountId: user.id, amr: ['pwd'], remember } }, false);
  });

  addSecondFactorRoutes(router, deps, { readForm, interaction: interaction('login'), finish });
  addRegistrationRoutes(router, deps, { readForm, interaction: interaction('login'), finish });
  addPasskeyRegistrationRoutes(router, deps, { readForm, interaction: interaction('login'), finish });
  addPasskeySignInRoutes(router, deps, { readForm, interaction: interaction('login'), finish });
  addFederatedSignInRoutes(router, deps, { readForm, interaction: interaction('login'), finish });
  addEmailConfirmationRoutes(router, deps, { readForm, interaction: interaction(CONFIRM_EMAIL_PROMPT), finish });
  addPasswordChangeRoutes(router, deps, { readForm, interaction: interaction(PASSWORD_CHANGE_PROMPT), finish });
  addTermsRoutes(router, deps, { readForm, interaction: interaction(TERMS_PROMPT), finish });

  router.post('/confirm', readForm, interaction('consent'), async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const grantId = await saveConsent(provider, details, (ctx.app.keys as string[])[0] ?? '');
    deps.audit.record({
      type: 'consent_granted',
      outcome: 'success',
      accountId: details.session?.accountId,
      clientId: String(details.params.client_id),
      ...requestFacts(ctx),
      detail: { scope: details.params.scope, grantId },
    });
    await finish(ctx, { consent: { grantId } }, true);
  });

  router.post('/abort', readForm, interaction(), async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    deps.audit.record({
      type: details.prompt.name === 'consent' ? 'consent_denied' : 'sign_in_cancelled',
      outcome: 'failure',
      accountId: details.session?.accountId,
      clientId: String(details.params.client_id),
      ...requestFacts(ctx),
    });
    await finish(ctx, { error: 'access_denied', error_description: 'The user cancelled the request' }, false);
  });

  return router.routes() as unknown as Middleware;
}

/**
 * The id of the grant a consent on this interaction creates: one per interaction, so that a second submission
 * of the same consent (a double click on Allow, a second tab) saves the same grant again instead of a second
 * one nobody would ever use. Keyed with the cookie secret, so that the interaction uid in the address bar does
 * not tell the grant id.
 */
const grantIdFor = (interactionUid: string, key: string) => createHmac('sha256', key).update(`grant of interaction ${interactionUid}`).digest('base64url');

/**
 * The page for an interaction that cannot be found any more, when this browser was the one shown it
 * (./restart.ts): finished or cancelled, it says so; expired, it offers to send the same request again. Undefined
 * when the browser does not know it (another browser, cookies cleared): the generic page says what it can.
 */
async function endedSignInPage(deps: InteractionDependencies, ctx: Context): Promise<PageError | undefined> {
  const remembered = rememberedSignInOf(ctx, ctx.params.uid ?? '');
  if (!remembered) return undefined;
  const client = await deps.catalog.client(remembered.clientId);
  const app = client?.name ?? remembered.clientId;
  if (remembered.ended === 'done') return new PageError(400, `You have already signed in to ${app}. Go back to ${app} to continue.`);
  if (remembered.ended === 'cancelled') return new PageError(400, `You cancelled signing in to ${app}. To sign in, start again from ${app}.`);
  const expired = `This sign-in to ${app} expired before it was finished.`;
  // A device-flow sign-in began on the device, and its code has expired by now too.
  if (!remembered.restartPath) return new PageError(400, `${expired} Start again on your device.`);
  // A client that is gone, or that accepts only pushed requests, cannot take the request sent again as it was.
  if (!client || client.requirePar) return new PageError(400, `${expired} Go back to ${app} and start again.`);
  return new PageError(400, expired, { href: remembered.restartPath, label: `Start signing in to ${app} again` });
}

async function clientNameOf(deps: InteractionDependencies, details: Interaction): Promise<string> {
  const clientId = String(details.params.client_id);
  return (await deps.catalog.client(clientId))?.name ?? clientId;
}

/** Records on the grant exactly what the consent page showed as missing: scopes, claims, API scopes. */
async function saveConsent(provider: Provider, details: Interaction, key: string): Promise<string> {
  const { accountId } = details.session ?? {};
  const clientId = String(details.params.client_id);
  if (!accountId) throw new PageError(400, 'You are not signed in any more. Go back to the application and start again.');
  const existing = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  const grant = existing ?? new provider.Grant({ jti: grantIdFor(details.uid, key), accountId, clientId } as ConstructorParameters<Provider['Grant']>[0]);
  const missing = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}
