/**
 * People creating their own account from the login page (Keycloak's "User registration"), when REGISTRATION=open:
 *
 *   GET  /interaction/:uid/register   name, email, password twice
 *   POST /interaction/:uid/register   → the account, signed in, on to the app (or to setting up two-step
 *                                       verification first, when the app or a role asks for it)
 *
 * Or with a passkey in place of the password, where the host can have passkeys: ./passkey-registration.ts.
 *
 * The address starts unconfirmed: with mail on, a confirmation link is mailed at once (src/mail/), and apps read
 * `email_verified: false` until it is pressed. An address an account has already is refused with a way to sign in
 * or reset the password, as Keycloak refuses it. Where there are terms of service (TERMS_URL), the form asks for
 * them to be accepted, and the account is made having accepted that version; both that and a new account count against the client IP's
 * allowance (10 an hour), which keeps a script from creating accounts or testing addresses.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { secondFactorWanted } from '../accounts/two-factor.js';
import type { User } from '../accounts/users.js';
import { requestFacts } from '../audit/request-facts.js';
import { ConflictError } from '../errors.js';
import { linkMailFor } from '../mail/link-mails.js';
import { describeWait } from '../security/failure-limiter.js';
import { waitForAllowance } from '../security/limits.js';
import { csrfToken } from './csrf.js';
import { PageError } from './errors.js';
import { clientShownAs, keepSignedIn } from './pages.js';
import type { InteractionDependencies } from './routes.js';
import { beginSecondFactor } from './second-factor.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** Who the account is for, whether it is made with a password or a passkey (./passkey-registration.ts). */
export const accountForm = z.object({
  name: z.string().trim().max(200, 'That name is too long.').optional(),
  email: z.email({ error: 'Enter your email address, such as name@example.com.' }).max(254, 'That email address is too long.'),
  /** The "Keep me signed in" box (LOGIN_REMEMBER_ME=ask): sent only when ticked. */
  remember: z.string().max(16).optional(),
  /** "I accept the terms of service" (TERMS_URL): the version shown, sent only when ticked. */
  terms: z.string().max(64).optional(),
});

const registrationForm = accountForm.extend({
  password: z.string('Enter a password.').min(1, 'Enter a password.').max(1024, 'That password is too long.'),
  repeat: z.string('Enter the password again.').max(1024),
});

/** Why the form's terms box does not do, or undefined: ticked for the version shown, or no terms at all. */
export function termsRefusal(config: InteractionDependencies['config'], ticked: string | undefined): string | undefined {
  return config.terms && ticked !== config.terms.version ? 'Accept the terms of service to create an account.' : undefined;
}

export const EMAIL_TAKEN = 'An account already uses this email. Sign in with it, or reset its password if you forgot it.';

/** What the person typed, to fill in again when the form is refused (never the passwords). */
function typedBefore(body: unknown): { name: string; email: string; remember: boolean } {
  const { name, email, remember } = (body ?? {}) as Record<string, unknown>;
  return { name: typeof name === 'string' ? name.slice(0, 200) : '', email: typeof email === 'string' ? email.slice(0, 254) : '', remember: remember !== undefined };
}

export async function renderRegistration(
  ctx: Context,
  deps: InteractionDependencies,
  details: Interaction,
  options: { error?: string; name?: string; email?: string; remember?: boolean; status?: number } = {},
): Promise<void> {
  deps.views.render(
    ctx,
    'register.njk',
    {
      uid: details.uid,
      csrf: csrfToken(ctx.app.keys as string[], details.uid),
      client: await clientShownAs(deps, details),
      name: options.name ?? '',
      email: options.email ?? '',
      // As on the login page: offered only when LOGIN_REMEMBER_ME=ask, unticked until the person ticks it.
      askRemember: deps.config.rememberMe === 'ask',
      remember: options.remember ?? false,
      // Accepted as the account is made, so the sign-in does not stop at them again (src/oidc/terms-prompt.ts).
      terms: deps.config.terms,
      // "Create account with a passkey instead" (./passkey-registration.ts), shown by the page's script.
      passkeys: deps.passkeys.available,
      error: options.error,
    },
    options.status ?? 200,
  );
}

export function addRegistrationRoutes(
  router: Router,
  deps: InteractionDependencies,
  steps: {
    readForm: Middleware;
    interaction: Middleware;
    finish: (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void>;
  },
): void {
  const { config } = deps;
  const open = () => refuseUnlessOpen(deps);

  router.get('/register', steps.interaction, async (ctx) => {
    open();
    await renderRegistration(ctx, deps, ctx.state.interaction as Interaction);
  });

  router.post('/register', steps.readForm, steps.interaction, async (ctx) => {
    open();
    const details = ctx.state.interaction as Interaction;
    const typed = typedBefore(ctx.request.body);
    const refuse = (error: string, status = 400) => renderRegistration(ctx, deps, details, { ...typed, error, status });
    const form = registrationForm.safeParse(ctx.request.body);
    if (!form.success) return refuse(form.error.issues[0]?.message ?? 'The form was not complete.');
    const terms = termsRefusal(config, form.data.terms);
    if (terms) return refuse(terms);
    const problem = await deps.users.newPasswordRefusal(form.data.password, form.data.repeat, form.data);
    if (problem) return refuse(problem);

    const tooMany = await registrationLimitRefusal(ctx, deps);
    if (tooMany) return refuse(tooMany, 429);
    const user = await createAccount(ctx, deps, details, form.data);
    if (!user) return refuse(EMAIL_TAKEN, 409);
    mailConfirmationLink(deps, user);
    await signInNewAccount(ctx, deps, details, user, keepSignedIn(config.rememberMe, form.data.remember), steps.finish);
  });
}

/** A page error unless people may create their own accounts here (REGISTRATION=open). */
export function refuseUnlessOpen(deps: InteractionDependencies): void {
  if (deps.config.registration.mode !== 'open') throw new PageError(404, 'Accounts cannot be created here: ask your administrator for one.');
}

/**
 * Counts a registration against the client IP's allowance (10 an hour); when it is used up, sets Retry-After and
 * says when to try again.
 */
export async function registrationLimitRefusal(ctx: Context, deps: InteractionDependencies): Promise<string | undefined> {
  const waitMs = await waitForAllowance([deps.limits.registrationsByIp, ctx.ip]);
  if (waitMs <= 0) return undefined;
  ctx.set('Retry-After', String(Math.ceil(waitMs / 1000)));
  return `Too many accounts were created from your network. Try again in ${describeWait(waitMs)}.`;
}

/** A new account's address is confirmed by a link mailed at once, unless the sign-in waits for it (./email-confirmation.ts). */
export function mailConfirmationLink(deps: InteractionDependencies, user: User): void {
  if (!deps.config.mail.confirmationRequired) deps.outbox?.post(async () => (await linkMailFor(deps.emailLinks, deps.config.issuer, user, 'email_confirmation')).mail);
}

/** The account, with the roles new accounts get and an unconfirmed address; undefined when the address is taken. */
async function createAccount(ctx: Context, deps: InteractionDependencies, details: Interaction, form: z.output<typeof registrationForm>): Promise<User | undefined> {
  const clientId = String(details.params.client_id);
  const { name, email, password } = form;
  try {
    const created = await deps.users.create({ email, name: name || undefined, password, roles: deps.config.registration.roles, emailVerified: false });
    const user = deps.config.terms ? await deps.users.acceptTerms(created.id, deps.config.terms.version) : created;
    deps.audit.record({ type: 'user_registered', outcome: 'success', accountId: user.id, clientId, ...requestFacts(ctx), detail: { email: user.email } });
    return user;
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    deps.audit.record({ type: 'user_registered', outcome: 'failure', clientId, ...requestFacts(ctx), detail: { email: email.toLowerCase(), reason: 'email_taken' } });
    return undefined;
  }
}

/** Signed in with the password just chosen, under the rules of a sign-in with it: a second step when one is asked. */
async function signInNewAccount(
  ctx: Context,
  deps: InteractionDependencies,
  details: Interaction,
  user: User,
  remember: boolean,
  finish: (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void>,
): Promise<void> {
  const clientId = String(details.params.client_id);
  const step = deps.twoFactor.stepFor(user, secondFactorWanted(details.params, await deps.catalog.client(clientId)));
  if (step !== 'none') return beginSecondFactor(ctx, details, user, step, remember);
  deps.audit.record({ type: 'sign_in', outcome: 'success', accountId: user.id, clientId, ...requestFacts(ctx), detail: { email: user.email, amr: ['pwd'], via: 'registration' } });
  await finish(ctx, { login: { accountId: user.id, amr: ['pwd'], remember } }, false);
}
