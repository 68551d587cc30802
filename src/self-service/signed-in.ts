/**
 * Who is signed in to the account page: the login session of this browser (the provider's session cookie, signed
 * with the cookie secrets Koa holds too), held to the same rules as a sign-in at /auth would be. A session that
 * ended, reached SESSION_MAX_TTL, or was issued before the user was logged out everywhere (src/oidc/accounts.ts),
 * or whose user is disabled or gone, is nobody: the page sends the browser to sign in again.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { User, UserRepository } from '../accounts/users.js';
import { activeSince } from '../oidc/accounts.js';
import { pastMaximum } from '../oidc/session-lifetime.js';

type Session = InstanceType<Provider['Session']>;

export interface SignedIn {
  user: User;
  session: Session & { uid: string; accountId: string };
}

export async function signedInOf(
  ctx: Context,
  deps: { provider: Provider; users: UserRepository; sessionMaxSeconds: number },
): Promise<SignedIn | undefined> {
  const cookie = ctx.cookies.get(deps.provider.cookieName('session'), { signed: true });
  if (!cookie) return undefined;
  const session = await deps.provider.Session.find(cookie);
  const { accountId, uid } = session ?? {};
  if (!session || typeof accountId !== 'string' || typeof uid !== 'string') return undefined;
  if (pastMaximum(deps.sessionMaxSeconds, session)) return undefined;
  const user = await deps.users.findById(accountId);
  if (!activeSince(user, session.loginTs)) return undefined;
  return { user, session: session as SignedIn['session'] };
}
