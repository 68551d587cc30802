/**
 * The ways an account signs in: its password, its passkeys and its links to other identity providers. The account
 * page takes one away (a passkey removed, a sign-in unlinked, the password removed) only while another is left, so
 * a person cannot lock themselves out; "Forgot your password?" would still let them back in where mail is sent,
 * but not everywhere is.
 */
import { type User, hasOwnPassword } from '../accounts/users.js';
import type { Database } from '../store/database.js';
import type { AccountDependencies } from './routes.js';

export const ONLY_WAY_IN = 'This is your only way to sign in: add a passkey, link another sign-in or set a password first.';

/** What the change takes away: one passkey (by id), one provider's link (by provider id), or the password. */
export type Leaving = { passkey: string } | { provider: string } | { password: true };

/**
 * Whether an account with these passkeys (none where passkeys are not available) and linked sign-ins still has a
 * way in once `leaving` is gone.
 */
export function wayInLeft(user: User, passkeys: readonly { id: string }[], identities: readonly { provider: string }[], leaving: Leaving): boolean {
  if (hasOwnPassword(user) && !('password' in leaving)) return true;
  const otherPasskeys = passkeys.filter((passkey) => !('passkey' in leaving && passkey.id === leaving.passkey));
  const otherIdentities = identities.filter((identity) => !('provider' in leaving && identity.provider === leaving.provider));
  return otherPasskeys.length > 0 || otherIdentities.length > 0;
}

/**
 * Takes a way in away with `take`, in the same transaction, only if the account still has another once it is
 * gone; false when refused. The account's row is locked while its passkeys and sign-ins are read, so two tabs
 * taking away its last two ways in at the same moment run one after the other, and the second is refused.
 */
export async function takeAWayIn(
  deps: Pick<AccountDependencies, 'users' | 'passkeys' | 'linkedIdentities'>,
  userId: string,
  leaving: Leaving,
  take: (trx: Database) => Promise<unknown>,
): Promise<boolean> {
  return deps.users.whileLocked(userId, async (trx, user) => {
    const [passkeys, identities] = await Promise.all([deps.passkeys.available ? deps.passkeys.list(userId, trx) : [], deps.linkedIdentities.listFor(userId, trx)]);
    if (!wayInLeft(user, passkeys, identities, leaving)) return false;
    await take(trx);
    return true;
  });
}
