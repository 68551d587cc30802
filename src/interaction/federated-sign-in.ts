/**
 * Signing in with another identity provider (src/federation/), from the login page's "Continue with <name>":
 *
 *   POST /interaction/:uid/federated/:provider            → to the provider, with a state, a nonce and PKCE kept
 *                                                            with the interaction
 *   GET  /federation/:provider/callback?code&state         the provider's answer: the state names the interaction,
 *                                                            and the browser is sent on to its own path below, where
 *                                                            its interaction cookie is (or, for a link begun on the
 *                                                            account page, to src/self-service/linked-identities.ts)
 *   GET  /interaction/:uid/federated/:provider/callback    the answer checked (once) → the account, then the app
 *   POST /interaction/:uid/federated/link                  the existing account's password, to link it
 *   POST /interaction/:uid/federated/link/cancel           not linking: back to the login page
 *
 * Which account the person signs in to:
 * 1. the one linked to their account at the provider (its `sub`), whatever address it now gives;
 * 2. else, when an account here has the address the provider gives: that one, once linked. Linking needs the
 *    account's password (the page "Link your <name> sign-in"), unless the provider is trusted for its confirmed
 *    addresses (`trustEmail`) and says this one is confirmed: an address alone is not proof that the account is
 *    theirs, since a provider may let anyone claim any address;
 * 3. else a new account with that address (`createAccounts`, the default), without a password, when the provider
 *    says the address is confirmed: an account made for an address nobody confirmed could be waiting for its
 *    owner, whom a password reset would let in beside whoever made the link (a pre-account takeover).
 *
 * The roles and attributes the entry maps from the provider's claims (src/federation/mappers.ts) are set on the
 * account before anything else reads it, so that a role the provider grants can ask for two-step verification.
 *
 * The provider's sign-in counts as one step (`amr` fed): an account that must use two-step verification (by user,
 * role or app) is asked for its code next, as after a password. An app may name the provider (`idp_hint`, or
 * Keycloak's `kc_idp_hint`): the login page is then skipped, once.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import { secondFactorWanted } from '../accounts/two-factor.js';
import type { User } from '../accounts/users.js';
import { requestFacts } from '../audit/request-facts.js';
import { ConflictError, InputError } from '../errors.js';
import { IDP_HINT_PARAMETERS, type IdentityProvider } from '../federation/identity-providers.js';
import { rememberUpstreamSignIn } from '../federation/logout.js';
import { type MappedAccount, changesFor, mapClaims, mappedAccount } from '../federation/mappers.js';
import {
  ACCOUNT_LINK_STATE_PREFIX,
  type PendingUpstreamSignIn,
  type UpstreamIdentity,
  UpstreamNotAllowedError,
  UpstreamSignInError,
  pendingUpstreamSignIn,
} from '../federation/upstream.js';
import { describeWait } from '../security/failure-limiter.js';
import { signInWithPassword } from '../security/password-sign-in.js';
import { csrfToken } from './csrf.js';
import { PageError } from './errors.js';
import { takeFromInteraction } from './interaction-state.js';
import { clientShownAs, keepSignedIn, renderLogin } from './pages.js';
import type { InteractionDependencies } from './routes.js';
import { beginSecondFactor } from './second-factor.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;
type Finish = (ctx: Context, result: InteractionResults, merge: boolean) => Promise<void>;

/** The state sent to the provider: the interaction's uid, a dot, and randomness. uids are nanoids (no dot). */
const STATE = /^([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9_-]{16,128}$/;

/** An account at the provider waiting to be linked to the account here with its address. */
const keptLink = z.object({
  provider: z.string(),
  subject: z.string(),
  email: z.string(),
  accountId: z.string(),
  /** What the provider's claims map to, applied once the link is made. */
  mapped: mappedAccount.optional(),
  /** The provider's ID token, for signing out there later (src/federation/logout.ts). */
  idToken: z.string().optional(),
});
type PendingLink = z.infer<typeof keptLink>;

const linkForm = z.object({
  password: z.string('Enter your password.').min(1, 'Enter your password.').max(1024, 'That password is not right.'),
});

/** The link waiting for its account's password, if this interaction is at that page. */
export function pendingLinkOf(details: Interaction): PendingLink | undefined {
  const parsed = keptLink.safeParse((details.result as { federatedLink?: unknown } | undefined)?.federatedLink);
  return parsed.success ? parsed.data : undefined;
}

async function keep(details: Interaction, kept: Record<string, unknown>): Promise<void> {
  details.result = kept as unknown as InteractionResults;
  await details.persist();
}

/** Takes the sign-in kept for `provider`, so that an answer works once; undefined when none, another's, or expired. */
async function takeSignIn(details: Interaction, provider: string): Promise<PendingUpstreamSignIn | undefined> {
  const kept = await takeFromInteraction(details, 'federated', pendingUpstreamSignIn);
  return kept && kept.provider === provider && kept.expiresAt > Date.now() ? kept : undefined;
}

export async function renderLinkPage(ctx: Context, deps: InteractionDependencies, details: Interaction, link: PendingLink, options: { error?: string; status?: number } = {}) {
  deps.views.render(
    ctx,
    'federated-link.njk',
    {
      uid: details.uid,
      csrf: csrfToken(ctx.app.keys as string[], details.uid),
      client: await clientShownAs(deps, details),
      provider: deps.upstream.get(link.provider)?.name ?? link.provider,
      email: link.email,
      error: options.error,
    },
    options.status ?? 200,
  );
}

/**
 * GET /federation/:provider/callback: the provider's answer, sent on to the path of the interaction its state
 * names, where the browser's interaction cookie is, with the query as it came.
 */
export function federationCallback(): Middleware {
  return (ctx, next) => {
    const match = /^\/federation\/([a-z0-9-]{1,32})\/callback$/.exec(ctx.path);
    if (!match || ctx.method !== 'GET') return next();
    const state = String(ctx.query.state ?? '');
    if (state.startsWith(ACCOUNT_LINK_STATE_PREFIX)) {
      // A link begun on the account page (src/self-service/linked-identities.ts).
      ctx.status = 303;
      return ctx.redirect(`/account/identities/callback/${match[1]}?${ctx.querystring}`);
    }
    const uid = STATE.exec(state)?.[1];
    if (!uid) throw new PageError(400, 'This answer from a sign-in provider does not belong to a sign-in here. Go back to the application and start again.');
    ctx.status = 303;
    ctx.redirect(`/interaction/${uid}/federated/${match[1]}/callback?${ctx.querystring}`);
  };
}

export function addFederatedSignInRoutes(router: Router, deps: InteractionDependencies, steps: { readForm: Middleware; interaction: Middleware; finish: Finish }): void {
  const { readForm, interaction, finish } = steps;
  const providerOf = (ctx: Context): IdentityProvider => {
    const provider = deps.upstream.get(ctx.params.provider ?? '');
    if (!provider) throw new PageError(404, 'This server offers no sign-in with that provider.');
    return provider;
  };

  /** The sign-in is done: on to the second step where the account needs one, else back to the app. */
  const signedIn = async (ctx: Context, user: User, amr: string[]) => {
    const details = ctx.state.interaction as Interaction;
    const clientId = String(details.params.client_id);
    const remember = keepSignedIn(deps.config.rememberMe, undefined);
    const step = deps.twoFactor.stepFor(user, secondFactorWanted(details.params, await deps.catalog.client(clientId)));
    if (step !== 'none') return beginSecondFactor(ctx, details, user, step, remember, amr);
    await finish(ctx, { login: { accountId: user.id, amr, remember } }, false);
  };

  const refuse = (ctx: Context, error: string, status = 400) => renderLogin(ctx, deps, ctx.state.interaction as Interaction, { error, status });

  router.post('/federated/link', readForm, interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const link = pendingLinkOf(details);
    if (!link) return refuse(ctx, 'There is no sign-in to link any more. Start again.');
    const form = linkForm.safeParse(ctx.request.body);
    if (!form.success) return renderLinkPage(ctx, deps, details, link, { error: form.error.issues[0]?.message, status: 400 });
    const outcome = await signInWithPassword(deps, {
      email: link.email,
      password: form.data.password,
      ip: ctx.ip,
      clientId: String(details.params.client_id),
      facts: requestFacts(ctx),
      via: `link_${link.provider}`,
    });
    if ('lockedMs' in outcome) {
      ctx.set('Retry-After', String(Math.ceil(outcome.lockedMs / 1000)));
      return renderLinkPage(ctx, deps, details, link, { error: `Too many failed sign-in attempts. Try again in ${describeWait(outcome.lockedMs)}.`, status: 429 });
    }
    if ('rejected' in outcome || outcome.user.id !== link.accountId) return renderLinkPage(ctx, deps, details, link, { error: 'That password is not right.', status: 400 });
    if (!(await deps.linkedIdentities.link(link.accountId, link.provider, link.subject, link.email))) {
      return refuse(ctx, 'Your account here has another account of that provider linked, or this one was linked meanwhile. Sign in with your password.', 409);
    }
    await keep(details, {});
    const provider = deps.upstream.get(link.provider);
    if (provider) rememberUpstreamSignIn(ctx, provider, link.idToken, { production: deps.config.production, sessionMaxSeconds: deps.config.ttl.sessionMax });
    const user = await withMappedClaims(deps, provider, outcome.user, link.mapped, false);
    // Both were proved: the password here and the sign-in there.
    await signedIn(ctx, user, ['pwd', 'fed']);
  });

  router.post('/federated/link/cancel', readForm, interaction, async (ctx) => {
    // Back to the login page, and not on to the provider again by the app's idp_hint.
    await keep(ctx.state.interaction as Interaction, { hinted: true });
    ctx.status = 303;
    ctx.redirect(`/interaction/${encodeURIComponent(ctx.params.uid ?? '')}`);
  });

  router.post('/federated/:provider', readForm, interaction, (ctx) => sendToProvider(ctx, deps, ctx.state.interaction as Interaction, providerOf(ctx)));

  router.get('/federated/:provider/callback', interaction, async (ctx) => {
    const details = ctx.state.interaction as Interaction;
    const provider = providerOf(ctx);
    const pending = await takeSignIn(details, provider.id);
    if (!pending) return refuse(ctx, `The sign-in with ${provider.name} expired or was used already. Try again.`);
    let identity: UpstreamIdentity;
    try {
      identity = await deps.upstream.complete(provider, ctx.querystring, pending);
    } catch (error) {
      if (!(error instanceof UpstreamSignInError)) throw error;
      const notAllowed = error instanceof UpstreamNotAllowedError;
      auditFailure(ctx, deps, provider, notAllowed ? 'not_allowed' : 'upstream_error', undefined, error.message);
      return refuse(ctx, error.message, notAllowed ? 403 : 400);
    }
    const mapped = mapClaims(provider.mappers, identity.claims);
    const resolved = await accountFor(deps, provider, identity, mapped);
    if ('refused' in resolved) {
      auditFailure(ctx, deps, provider, resolved.reason, resolved.accountId);
      return refuse(ctx, resolved.refused, 403);
    }
    if ('link' in resolved) {
      await keep(details, { federatedLink: { ...resolved.link, idToken: identity.idToken } });
      return renderLinkPage(ctx, deps, details, resolved.link);
    }
    deps.audit.record({
      type: 'sign_in',
      outcome: 'success',
      accountId: resolved.user.id,
      clientId: String(details.params.client_id),
      ...requestFacts(ctx),
      detail: { email: resolved.user.email, via: provider.id, amr: ['fed'], ...(resolved.created ? { created: true } : {}) },
    });
    rememberUpstreamSignIn(ctx, provider, identity.idToken, { production: deps.config.production, sessionMaxSeconds: deps.config.ttl.sessionMax });
    await signedIn(ctx, await withMappedClaims(deps, provider, resolved.user, mapped, resolved.created === true), ['fed']);
  });
}

/** To the provider, with what its answer is checked against kept with the interaction; the login page if it is down. */
async function sendToProvider(ctx: Context, deps: InteractionDependencies, details: Interaction, provider: IdentityProvider): Promise<void> {
  let started: Awaited<ReturnType<typeof deps.upstream.begin>>;
  try {
    started = await deps.upstream.begin(provider, (random) => `${details.uid}.${random}`);
  } catch (error) {
    if (error instanceof UpstreamSignInError) return renderLogin(ctx, deps, details, { error: error.message, status: 502 });
    throw error;
  }
  // `hinted`: the app's idp_hint has been followed once; back at the login page, it is not followed again.
  await keep(details, { federated: started.pending, hinted: true });
  ctx.status = 303;
  ctx.redirect(started.url.href);
}

/**
 * The app named a provider of ours (`idp_hint` or `kc_idp_hint`, as Keycloak's): the login page is skipped, once.
 * A hint that names no provider is ignored, as Keycloak ignores it, and the login page shows.
 */
export async function followedIdpHint(ctx: Context, deps: InteractionDependencies, details: Interaction): Promise<boolean> {
  if ((details.result as { hinted?: unknown } | undefined)?.hinted) return false;
  const hint = IDP_HINT_PARAMETERS.map((name) => details.params[name]).find((value) => typeof value === 'string');
  const provider = typeof hint === 'string' ? deps.upstream.get(hint) : undefined;
  if (!provider) return false;
  await sendToProvider(ctx, deps, details, provider);
  return true;
}

type Resolution = { user: User; created?: true } | { link: PendingLink } | { refused: string; reason: string; accountId?: string };

/** Which account the provider's identity signs in to (the order in this module's comment). */
async function accountFor(deps: InteractionDependencies, provider: IdentityProvider, identity: UpstreamIdentity, mapped: MappedAccount | undefined): Promise<Resolution> {
  const linkedTo = await deps.linkedIdentities.signIn(provider.id, identity.subject, identity.email);
  if (linkedTo) {
    const user = await deps.users.findById(linkedTo);
    if (!user || user.disabledAt) return { refused: 'This account is disabled. Ask your administrator.', reason: 'account_disabled', accountId: linkedTo };
    return { user };
  }
  if (!identity.email) return { refused: `${provider.name} did not give an email address, which an account here needs.`, reason: 'no_email' };
  const existing = await deps.users.findByEmail(identity.email);
  if (existing) return linkExisting(deps, provider, { ...identity, email: identity.email }, existing, mapped);
  if (!provider.createAccounts) {
    return { refused: `No account here is linked to that ${provider.name} account. Sign in with your email and password, or ask your administrator for an account.`, reason: 'no_account' };
  }
  // An account made for an address nobody confirmed could be waiting for that address's owner: once they took it
  // over by a password reset, the link would still let in whoever made it (a pre-account takeover).
  if (!identity.emailVerified) {
    return { refused: `${provider.name} has not confirmed your address, ${identity.email}. Confirm it there and try again, or sign in here another way.`, reason: 'email_unconfirmed' };
  }
  try {
    const user = await deps.users.create({ email: identity.email, name: identity.name, roles: deps.config.registration.roles, emailVerified: identity.emailVerified });
    await deps.linkedIdentities.link(user.id, provider.id, identity.subject, identity.email);
    return { user, created: true };
  } catch (error) {
    // An address our rules refuse (InputError names why): the person can only sign in another way.
    if (error instanceof InputError) return { refused: `The address ${provider.name} gave cannot be used for an account here.`, reason: 'unusable_email' };
    // Made meanwhile, by another tab's sign-in or a registration: that account is the one to link.
    if (!(error instanceof ConflictError)) throw error;
    const made = await deps.users.findByEmail(identity.email);
    if (!made) throw error;
    return linkExisting(deps, provider, { ...identity, email: identity.email }, made, mapped);
  }
}

async function linkExisting(deps: InteractionDependencies, provider: IdentityProvider, identity: UpstreamIdentity & { email: string }, user: User, mapped: MappedAccount | undefined): Promise<Resolution> {
  if (user.disabledAt) return { refused: 'This account is disabled. Ask your administrator.', reason: 'account_disabled', accountId: user.id };
  const link: PendingLink = { provider: provider.id, subject: identity.subject, email: identity.email, accountId: user.id, mapped };
  if (!(provider.trustEmail && identity.emailVerified)) return { link };
  if (!(await deps.linkedIdentities.link(user.id, provider.id, identity.subject, identity.email))) {
    return { refused: `Your account here has another ${provider.name} account linked. Sign in with that one, or with your password.`, reason: 'other_account_linked', accountId: user.id };
  }
  return { user };
}

/**
 * The account with the roles and attributes the provider's claims map to (src/federation/mappers.ts): at every
 * sign-in with it, or (`syncMode` import) only on the one that made the account.
 */
async function withMappedClaims(deps: InteractionDependencies, provider: IdentityProvider | undefined, user: User, mapped: MappedAccount | undefined, created: boolean): Promise<User> {
  if (!provider || !mapped || (provider.mappers.syncMode === 'import' && !created)) return user;
  const changes = changesFor(user, mapped);
  if (!changes) return user;
  try {
    return await deps.users.update(user.id, changes, { via: provider.id });
  } catch (error) {
    // The attributes would pass the account's limit: the sign-in goes on without them, and the log says why.
    if (!(error instanceof InputError)) throw error;
    deps.logger.warn({ provider: provider.id, accountId: user.id, err: error }, 'an identity provider’s mapped roles and attributes could not be set');
    return user;
  }
}

function auditFailure(ctx: Context, deps: InteractionDependencies, provider: IdentityProvider, reason: string, accountId?: string, message?: string): void {
  deps.audit.record({
    type: 'sign_in',
    outcome: 'failure',
    accountId,
    clientId: String((ctx.state.interaction as Interaction).params.client_id),
    ...requestFacts(ctx),
    detail: { via: provider.id, reason, ...(message ? { message } : {}) },
  });
}
