/**
 * The passwords an account had, by two rules that add up (Keycloak's "Not Recently Used" and "Not Recently Used
 * (In Days)" policies): with PASSWORD_HISTORY=N a new password may not be the current one nor any of the N-1 before
 * it; with PASSWORD_HISTORY_DAYS=D, not the current one nor any it had in the last D days (at most the newest
 * MAX_REMEMBERED of those). Only hashes are kept, in `password_history`, and no more than the rules need: each
 * change forgets the others, so lowering a setting thins each account's list at its next change. 0 and 0 check
 * and keep nothing.
 *
 * NIST SP 800-63B does not ask for this; auditors of many organisations do. The comparisons run on libuv's pool
 * side by side, so a check costs about one bcrypt comparison of time per four hashes.
 */
import { InputError } from '../errors.js';
import type { Database } from '../store/database.js';
import type { PasswordHasher } from './passwords.js';

/** The most passwords PASSWORD_HISTORY may name. */
export const MAX_PASSWORD_HISTORY = 24;

/** The most days PASSWORD_HISTORY_DAYS may name: ten years. */
export const MAX_PASSWORD_HISTORY_DAYS = 3650;

/** The most earlier passwords compared, whatever the rules: each comparison is a bcrypt's worth of CPU. */
const MAX_REMEMBERED = 100;

export class PasswordHistory {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    /** How many of the latest passwords, the current one included, a new one may not repeat. */
    readonly length: number,
    /** For how many days a replaced password may not come back. */
    readonly days = 0,
  ) {}

  get #on(): boolean {
    return this.length > 0 || this.days > 0;
  }

  /** Refuses `password` when it is the user's current one or a remembered one before it (PasswordReusedError). */
  async refuseReused(userId: string, password: string): Promise<void> {
    if (await this.includes(userId, password)) throw new PasswordReusedError(this.length, this.days);
  }

  /** Whether `password` is the user's current password or one of the remembered ones before it. */
  async includes(userId: string, password: string): Promise<boolean> {
    if (!this.#on) return false;
    // The current hash and the remembered ones, in one round trip.
    const rows: { password_hash: string }[] = await this.db
      .select('password_hash')
      .from('users')
      .where({ id: userId })
      .whereNotNull('password_hash')
      .unionAll((earlier) => {
        earlier.select('password_hash').from('password_history').where({ user_id: userId }).where((kept) => this.#remembered(kept, userId)).orderBy('id', 'desc').limit(MAX_REMEMBERED);
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
    if (this.length > 1 || this.days > 0) {
      const current = await trx('users').where({ id: userId }).forUpdate().first('password_hash');
      if (current?.password_hash) await trx('password_history').insert({ user_id: userId, password_hash: current.password_hash });
    }
    await trx('password_history')
      .where({ user_id: userId })
      .whereNotIn('id', (kept) =>
        kept
          .select('id')
          .from('password_history')
          .where({ user_id: userId })
          .where((remembered) => this.#remembered(remembered, userId))
          .orderBy('id', 'desc')
          .limit(MAX_REMEMBERED),
      )
      .delete();
  }

  /** The rows either rule remembers: among the N-1 newest, or replaced within the last D days. */
  #remembered(query: ReturnType<Database['queryBuilder']>, userId: string): void {
    const newest = Math.max(this.length - 1, 0);
    query.whereIn('id', (ids) => ids.select('id').from('password_history').where({ user_id: userId }).orderBy('id', 'desc').limit(newest));
    if (this.days > 0) query.orWhere('replaced_at', '>', new Date(Date.now() - this.days * 86_400_000));
  }
}

/** A new password the history refuses: the message for an administrator, `sentence` for the account's owner. */
export class PasswordReusedError extends InputError {
  override name = 'PasswordReusedError';

  constructor(
    readonly length: number,
    readonly days = 0,
  ) {
    super(`password: that is ${PasswordReusedError.#refused(length, days)}`);
  }

  get sentence(): string {
    if (this.days > 0) return `That password is ${this.length > 1 ? `one of your last ${this.length}` : 'your current one'} or one you had in the last ${this.days} days: choose another.`;
    return this.length <= 1 ? 'Choose a password other than your current one.' : `That password is one of your last ${this.length}: choose another.`;
  }

  /** What the rules refused the password as, for an administrator. */
  static #refused(length: number, days: number): string {
    const byCount = length > 1 ? `one of the account's last ${length} passwords` : "the account's current password";
    if (days === 0) return length > 1 ? `${byCount} (PASSWORD_HISTORY)` : byCount;
    return `${byCount} or one it had in the last ${days} days (${length > 1 ? 'PASSWORD_HISTORY, ' : ''}PASSWORD_HISTORY_DAYS)`;
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
