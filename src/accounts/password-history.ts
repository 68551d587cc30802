/**
 * The passwords an account had (PASSWORD_HISTORY, Keycloak's "Not Recently Used" policy): with a setting of N, a
 * new password may not be the current one nor any of the N-1 before it. Only hashes are kept, in
 * `password_history`, and no more than the setting needs: each change forgets the older ones, so lowering the
 * setting thins each account's list at its next change. 0 checks and keeps nothing.
 *
 * NIST SP 800-63B does not ask for this; auditors of many organisations do. The comparisons run on libuv's pool
 * side by side, so a check costs about one bcrypt comparison of time per four hashes.
 */
import { InputError } from '../errors.js';
import type { Database } from '../store/database.js';
import type { PasswordHasher } from './passwords.js';

/** The most passwords PASSWORD_HISTORY may name. */
export const MAX_PASSWORD_HISTORY = 24;

export class PasswordHistory {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    /** How many of the latest passwords, the current one included, a new one may not repeat. */
    readonly length: number,
  ) {}

  /** Refuses `password` when it is the user's current one or a remembered one before it (PasswordReusedError). */
  async refuseReused(userId: string, password: string): Promise<void> {
    if (await this.includes(userId, password)) throw new PasswordReusedError(this.length);
  }

  /** Whether `password` is the user's current password or one of the remembered ones before it. */
  async includes(userId: string, password: string): Promise<boolean> {
    if (this.length === 0) return false;
    // The current hash and the newest remembered ones, in one round trip.
    const rows: { password_hash: string }[] = await this.db
      .select('password_hash')
      .from('users')
      .where({ id: userId })
      .whereNotNull('password_hash')
      .unionAll((earlier) => {
        earlier.select('password_hash').from('password_history').where({ user_id: userId }).orderBy('id', 'desc').limit(this.length - 1);
      }, true);
    const hashes = rows.map((row) => row.password_hash);
    const matches = await Promise.all(hashes.map((hash) => this.hasher.matches(password, hash)));
    return matches.includes(true);
  }

  /**
   * Keeps the hash about to be replaced, within the transaction that replaces it (the user's row is locked, so
   * two changes at once each keep the one they replaced), and forgets those beyond the setting.
   */
  async keepCurrent(trx: Database, userId: string): Promise<void> {
    const kept = Math.max(this.length - 1, 0);
    if (kept > 0) {
      const current = await trx('users').where({ id: userId }).forUpdate().first('password_hash');
      if (current?.password_hash) await trx('password_history').insert({ user_id: userId, password_hash: current.password_hash });
    }
    await trx('password_history')
      .where({ user_id: userId })
      .whereNotIn('id', (newest) => newest.select('id').from('password_history').where({ user_id: userId }).orderBy('id', 'desc').limit(kept))
      .delete();
  }
}

/** A new password the history refuses: the message for an administrator, `sentence` for the account's owner. */
export class PasswordReusedError extends InputError {
  override name = 'PasswordReusedError';

  constructor(readonly length: number) {
    super(length === 1 ? "password: that is the account's current password" : `password: that is one of the account's last ${length} passwords (PASSWORD_HISTORY)`);
  }

  get sentence(): string {
    return this.length === 1 ? 'Choose a password other than your current one.' : `That password is one of your last ${this.length}: choose another.`;
  }
}

/** A password change from a form: what it returned, or the sentence to show when the history refused it. */
export async function changeUnlessReused<T>(change: Promise<T>): Promise<{ changed: T } | { refusal: string }> {
  try {
    return { changed: await change };
  } catch (error) {
    if (error instanceof PasswordReusedError) return { refusal: error.sentence };
    throw error;
  }
}
