/**
 * Signing out at the identity provider too (an OpenID Connect entry's `"logout": true`, as Keycloak's brokered
 * logout): a person who signed in here through such a provider and then signs out of every app here (RP-initiated
 * logout, "Sign out of all apps") is sent on to the provider's end_session_endpoint, and from there back to where
 * the sign-out here was going (the app's post_logout_redirect_uri, or our "signed out" page).
 *
 *   the federated sign-in keeps  authz.upstream  (signed: the provider and its ID token, for id_token_hint);
 *                                a sign-in by other means in the browser drops it
 *   POST /session/end/confirm    oidc-provider ends the session here, then → the provider's end-session URL
 *                                (what the sign-out here answered is kept in authz.logout, signed, with a state)
 *   GET  /federation/:provider/logged-out?state   back from the provider → on to where the sign-out was going
 *
 * The sign-out here never depends on the provider: one that cannot be reached, or has no end_session_endpoint,
 * is skipped, and the person goes where they were going.
 */
import { randomBytes } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { IdentityProvider } from './identity-providers.js';
import type { UpstreamProviders } from './upstream.js';

const SIGNED_IN_COOKIE = 'authz.upstream';
const SIGNING_OUT_COOKIE = 'authz.logout';
/** How long the person has at the provider's sign-out page before coming back is no longer recognised. */
const SIGNING_OUT_TTL_MS = 10 * 60 * 1000;
/** As long as a login session may last, at most: the cookie is only the hint for the provider's sign-out. */
const SIGNED_IN_MAX_MS = 30 * 86_400 * 1000;

const signedIn = z.object({ provider: z.string(), idToken: z.string() });
const signingOut = z.object({ provider: z.string(), state: z.string(), returnTo: z.string() });

const cookieOptions = (production: boolean, path: string) => ({ signed: true, httpOnly: true, sameSite: 'lax' as const, secure: production, path, overwrite: true });

function read<T>(ctx: Context, name: string, schema: z.ZodType<T>): T | undefined {
  const value = ctx.cookies.get(name, { signed: true });
  if (!value) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const encoded = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** After a sign-in through `provider`: remembers it in this browser, when a sign-out here is to sign out there. */
export function rememberUpstreamSignIn(ctx: Context, provider: IdentityProvider, idToken: string | undefined, options: { production: boolean; sessionMaxSeconds: number }): void {
  if (!provider.logout || !idToken) return;
  const maxAge = options.sessionMaxSeconds > 0 ? Math.min(options.sessionMaxSeconds * 1000, SIGNED_IN_MAX_MS) : SIGNED_IN_MAX_MS;
  ctx.cookies.set(SIGNED_IN_COOKIE, encoded({ provider: provider.id, idToken }), { ...cookieOptions(options.production, '/'), maxAge });
}

/** A sign-in here by other means (a password, a passkey) leaves nothing to sign out of at a provider. */
export function forgetUpstreamSignIn(ctx: Context, production: boolean): void {
  if (ctx.cookies.get(SIGNED_IN_COOKIE)) ctx.cookies.set(SIGNED_IN_COOKIE, null, cookieOptions(production, '/'));
}

/**
 * Around oidc-provider's end-session confirmation: once it has ended the whole session here (`logout=yes`), a
 * browser that signed in through a provider with `logout` goes on to that provider's sign-out first.
 */
export function signOutAtProvider(upstream: UpstreamProviders, production: boolean): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.method !== 'POST' || ctx.path !== '/session/end/confirm' || ctx.status < 300 || ctx.status >= 400) return;
    const kept = read(ctx, SIGNED_IN_COOKIE, signedIn);
    if (!kept) return;
    const ended = (ctx as { oidc?: { params?: { logout?: unknown } } }).oidc?.params?.logout === 'yes';
    if (!ended) return;
    ctx.cookies.set(SIGNED_IN_COOKIE, null, cookieOptions(production, '/'));
    const provider = upstream.get(kept.provider);
    const returnTo = ctx.response.get('Location');
    if (!provider?.logout || !returnTo) return;
    const state = randomBytes(16).toString('base64url');
    const there = await upstream.endSessionUrl(provider, kept.idToken, state);
    if (!there) return;
    ctx.cookies.set(SIGNING_OUT_COOKIE, encoded({ provider: provider.id, state, returnTo }), {
      ...cookieOptions(production, '/federation'),
      maxAge: SIGNING_OUT_TTL_MS,
    });
    ctx.status = 303;
    ctx.redirect(there.href);
  };
}

/** GET /federation/:provider/logged-out: back from the provider's sign-out, on to where the sign-out here was going. */
export function backFromProviderSignOut(production: boolean, signedOutPage: (ctx: Context) => void): Middleware {
  return (ctx, next) => {
    const match = /^\/federation\/([a-z0-9-]{1,32})\/logged-out$/.exec(ctx.path);
    if (!match || ctx.method !== 'GET') return next();
    const kept = read(ctx, SIGNING_OUT_COOKIE, signingOut);
    ctx.cookies.set(SIGNING_OUT_COOKIE, null, cookieOptions(production, '/federation'));
    // Another browser's, a replay, or no state at all: the person is signed out here either way, so say that.
    if (!kept || kept.provider !== match[1] || kept.state !== ctx.query.state) return signedOutPage(ctx);
    ctx.status = 303;
    ctx.redirect(kept.returnTo);
  };
}
