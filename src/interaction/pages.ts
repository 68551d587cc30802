/** What the login and consent pages show: the client asking, the scopes it wants, the form's CSRF token. */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { csrfToken } from './csrf.js';
import type { InteractionDependencies } from './routes.js';
import { describeOidcScope } from './scope-descriptions.js';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

async function clientShownAs(deps: InteractionDependencies, details: Interaction) {
  const clientId = String(details.params.client_id);
  const client = await deps.catalog.client(clientId);
  const redirect = URL.parse(String(details.params.redirect_uri ?? ''));
  return { id: clientId, name: client?.name ?? clientId, host: redirect?.host ?? '' };
}

export async function renderLogin(
  ctx: Context,
  deps: InteractionDependencies,
  details: Interaction,
  options: { error?: string; email?: string; remember?: boolean; status?: number } = {},
): Promise<void> {
  const loginHint = typeof details.params.login_hint === 'string' ? details.params.login_hint : '';
  deps.views.render(
    ctx,
    'login.njk',
    {
      uid: details.uid,
      csrf: csrfToken(ctx.app.keys as string[], details.uid),
      client: await clientShownAs(deps, details),
      email: options.email ?? loginHint,
      // The box is offered only when LOGIN_REMEMBER_ME=ask, unticked until the user ticks it.
      askRemember: deps.config.rememberMe === 'ask',
      remember: options.remember ?? false,
      error: options.error,
    },
    options.status ?? 200,
  );
}

export async function renderConsent(ctx: Context, deps: InteractionDependencies, details: Interaction): Promise<void> {
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
  const apis = await Promise.all(
    Object.entries(missing.missingResourceScopes ?? {}).map(async ([indicator, scopes]) => ({
      name: (await deps.catalog.api(indicator))?.name ?? indicator,
      indicator,
      scopes,
    })),
  );
  const user = details.session?.accountId ? await deps.users.findById(details.session.accountId) : undefined;
  deps.views.render(ctx, 'consent.njk', {
    uid: details.uid,
    csrf: csrfToken(ctx.app.keys as string[], details.uid),
    client: await clientShownAs(deps, details),
    user: user ? { email: user.email, name: user.name } : undefined,
    scopes: (missing.missingOIDCScope ?? []).filter((scope) => scope !== 'openid').map(describeOidcScope),
    apis,
  });
}
