/**
 * Signing in to the account page: an authorization request of its built-in client (src/clients/account-console.ts)
 * through /auth, so the login page, locks and two-step verification are the ones every app gets, and the session it
 * leaves is this browser's login session. The page needs no tokens, only that session: the callback checks that the
 * answer belongs to the request this browser started (`state`, kept in a signed cookie) and throws the code away.
 *
 *   GET /account/callback?code=…&state=…   → 303 to the page (or to the section the sign-in was for)
 *   GET /account/callback?error=…&state=…  → a page saying the sign-in did not happen
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { MFA_ACR } from '../accounts/two-factor.js';
import { ACCOUNT_CONSOLE_CLIENT_ID, accountConsoleRedirectUri } from '../clients/account-console.js';
import { PageError } from '../interaction/errors.js';

const SIGN_IN_COOKIE = 'account_sign_in';

/**
 * Why the sign-in is made: to see the page, to set up two-step verification (step-up, `acr_values`), or, for an
 * account without a password, to make a change in one of the page's sections right after a sign-in (a fresh one,
 * ./re-authentication.ts): its first password, its address, its passkeys, its other sign-ins or its deletion.
 */
export type SignInPurpose = 'view' | 'two-step' | AgainFor;

/** The sections an account without a password changes right after a sign-in. */
export const AGAIN_FOR = ['password', 'email', 'passkeys', 'identities', 'delete'] as const;
export type AgainFor = (typeof AGAIN_FOR)[number];

const RETURN_TO: Record<SignInPurpose, string> = {
  view: '/account',
  'two-step': '/account?done=two-step-on#two-step',
  ...(Object.fromEntries(AGAIN_FOR.map((section) => [section, `/account#${section}`])) as Record<AgainFor, string>),
};

const cookieOptions = (production: boolean) => ({
  signed: true,
  httpOnly: true,
  sameSite: 'lax' as const,
  secure: production,
  path: '/account',
  // As long as the provider keeps the interaction it leads to (its default, one hour).
  maxAge: 60 * 60 * 1000,
  overwrite: true,
});

/** `reauthenticate`: the login page even for a signed-in browser (prompt=login). */
export function startSignIn(ctx: Context, options: { issuer: string; production: boolean; purpose: SignInPurpose; reauthenticate?: boolean }): void {
  const state = randomBytes(16).toString('base64url');
  // The provider requires PKCE of a public client; the code is never redeemed, so the verifier is not kept.
  const challenge = createHash('sha256').update(randomBytes(32)).digest('base64url');
  ctx.cookies.set(SIGN_IN_COOKIE, `${state}.${options.purpose}`, cookieOptions(options.production));
  const authorization = new URL('/auth', options.issuer);
  authorization.search = new URLSearchParams({
    client_id: ACCOUNT_CONSOLE_CLIENT_ID,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: accountConsoleRedirectUri(options.issuer),
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(options.purpose === 'two-step' ? { acr_values: MFA_ACR } : {}),
    ...(options.reauthenticate ? { prompt: 'login' } : {}),
  }).toString();
  ctx.status = 303;
  ctx.redirect(authorization.href);
}

/** The started sign-in this browser holds, if `state` is its. */
function startedSignIn(ctx: Context, state: unknown): SignInPurpose | undefined {
  const [kept, purpose] = (ctx.cookies.get(SIGN_IN_COOKIE, { signed: true }) ?? '').split('.');
  if (!kept || typeof state !== 'string' || state !== kept) return undefined;
  return purpose && Object.hasOwn(RETURN_TO, purpose) ? (purpose as SignInPurpose) : 'view';
}

export async function finishSignIn(ctx: Context, options: { provider: Provider; production: boolean }): Promise<void> {
  const { code, error, state } = ctx.query;
  const purpose = startedSignIn(ctx, state);
  if (!purpose) {
    throw new PageError(400, 'This sign-in was not started in this browser, or it was already finished.', { href: '/account', label: 'Go to your account' });
  }
  ctx.cookies.set(SIGN_IN_COOKIE, null, cookieOptions(options.production));
  if (typeof error === 'string') {
    const message = error === 'access_denied' ? 'You cancelled signing in to your account.' : 'Signing in to your account did not succeed.';
    throw new PageError(400, message, { href: '/account', label: 'Sign in to your account' });
  }
  if (typeof code === 'string') await discardCode(options.provider, code);
  ctx.status = 303;
  ctx.redirect(RETURN_TO[purpose]);
}

/** The code is not needed: it is removed at once, so that nothing could redeem it later. */
async function discardCode(provider: Provider, value: string): Promise<void> {
  const code = await provider.AuthorizationCode.find(value);
  if (code?.clientId === ACCOUNT_CONSOLE_CLIENT_ID) await code.destroy();
}
