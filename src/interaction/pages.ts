/** What the login and consent pages show: the client asking, the scopes it wants, the form's CSRF token. */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { User } from '../accounts/users.js';
import type { Config } from '../config.js';
import { csrfToken } from './csrf.js';
import { PageError } from './errors.js';
import type { InteractionDependencies } from './routes.js';
import { describeClaim, describeOidcScope } from './scope-descriptions.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * The account a step after the login (the address's confirmation, a new password) is for: the session's, read
 * again, or a page saying the sign-in is gone.
 */
export async function signedInAccountOf(deps: InteractionDependencies, details: Interaction): Promise<User> {
  const user = details.session?.accountId ? await deps.users.findById(details.session.accountId) : undefined;
  if (!user) throw new PageError(400, 'You are not signed in any more. Go back to the application and start again.');
  return user;
}

export async function clientShownAs(deps: InteractionDependencies, details: Interaction) {
  const clientId = String(details.params.client_id);
  const client = await deps.catalog.client(clientId);
  const redirect = URL.parse(String(details.params.redirect_uri ?? ''));
  return { id: clientId, name: client?.name ?? clientId, host: redirect?.host ?? '' };
}

/** Whether the session cookie outlives the browser: LOGIN_REMEMBER_ME, or with `ask` the user's tick. */
export const keepSignedIn = (setting: Config['rememberMe'], ticked: string | undefined) =>
  setting === 'always' || (setting === 'ask' && ticked !== undefined);

export async function renderLogin(
  ctx: Context,
  deps: InteractionDependencies,
  details: Interaction,
  options: { error?: string; email?: string; remember?: boolean; status?: number } = {},
): Promise<void> {
  deps.views.render(
    ctx,
    'login.njk',
    {
      uid: details.uid,
      csrf: csrfToken(ctx.app.keys as string[], details.uid),
      client: await clientShownAs(deps, details),
      email: options.email ?? (await emailToSuggest(deps, details)),
      // The box is offered only when LOGIN_REMEMBER_ME=ask, unticked until the user ticks it.
      askRemember: deps.config.rememberMe === 'ask',
      // Offered only when this server sends mail (src/self-service/email-link-pages.ts).
      passwordReset: deps.config.mail.transport !== 'off',
      registration: deps.config.registration.mode === 'open',
      // Where WebAuthn can work (not on an issuer that is an IP address); the script shows it where the browser can.
      passkeys: deps.passkeys.available,
      // "Continue with …" for each identity provider (./federated-sign-in.ts).
      providers: deps.upstream.list.map((provider) => ({ id: provider.id, name: provider.name })),
      remember: options.remember ?? false,
      error: options.error,
    },
    options.status ?? 200,
  );
}

/**
 * The email the form starts with: the client's `login_hint`, or, when the user is asked to sign in again (prompt=login,
 * max_age, SESSION_MAX_TTL), the signed-in user's, as Keycloak and Google do; another person can still change it.
 */
async function emailToSuggest(deps: InteractionDependencies, details: Interaction): Promise<string> {
  if (typeof details.params.login_hint === 'string') return details.params.login_hint;
  const accountId = details.session?.accountId;
  return (accountId && (await deps.users.findById(accountId))?.email) || '';
}

export async function renderConsent(ctx: Context, deps: InteractionDependencies, details: Interaction): Promise<void> {
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  const apis = await Promise.all(
    Object.entries(missing.missingResourceScopes ?? {}).map(async ([indicator, scopes]) => ({
      name: (await deps.catalog.api(indicator))?.name ?? indicator,
      indicator,
      scopes,
    })),
  );
  const user = details.session?.accountId ? await deps.users.findById(details.session.accountId) : undefined;
  const client = await clientShownAs(deps, details);
  deps.views.render(ctx, 'consent.njk', {
    uid: details.uid,
    csrf: csrfToken(ctx.app.keys as string[], details.uid),
    client,
    about: await deps.appDescriptions?.(client.id),
    user: user ? { email: user.email, name: user.name } : undefined,
    scopes: [
      ...new Set([
        ...(missing.missingOIDCScope ?? []).filter((scope) => scope !== 'openid').map((scope) => describeOidcScope(scope, deps.config.claimScopes)),
        ...(missing.missingOIDCClaims ?? []).map((claim) => describeClaim(claim, deps.config.userClaims, deps.config.claimScopes)),
      ]),
    ],
    apis,
  });
}
