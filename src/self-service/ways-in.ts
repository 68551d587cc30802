/**
 * The ways an account signs in: its password, its passkeys and its links to other identity providers. The account
 * page takes one away (a passkey removed, a sign-in unlinked, the password removed) only while another is left, so
 * a person cannot lock themselves out; "Forgot your password?" would still let them back in where mail is sent,
 * but not everywhere is.
 */
import { type User, hasOwnPassword } from '../accounts/users.js';
import type { AccountDependencies } from './routes.js';

export const ONLY_WAY_IN = 'This is your only way to sign in: add a passkey, link another sign-in or set a password first.';

/** What the change takes away: one passkey (by id), one provider's link (by provider id), or the password. */
export type Leaving = { passkey: string } | { provider: string } | { password: true };

/** Whether the account still has a way to sign in once `leaving` is gone. */
export async function keepsAWayIn(deps: Pick<AccountDependencies, 'passkeys' | 'linkedIdentities'>, user: User, leaving: Leaving): Promise<boolean> {
  if (hasOwnPassword(user) && !('password' in leaving)) return true;
  const [passkeys, identities] = await Promise.all([deps.passkeys.available ? deps.passkeys.list(user.id) : [], deps.linkedIdentities.listFor(user.id)]);
  const otherPasskeys = passkeys.filter((passkey) => !('passkey' in leaving && passkey.id === leaving.passkey));
  const otherIdentities = identities.filter((identity) => !('provider' in leaving && identity.provider === leaving.provider));
  return otherPasskeys.length > 0 || otherIdentities.length > 0;
}
