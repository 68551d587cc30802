/**
 * User passwords: bcrypt at a configurable cost. bcrypt's async functions run on libuv's thread pool, so a
 * sign-in never blocks the event loop. An unknown email is compared against a decoy hash of the same cost, so
 * the response time does not tell an attacker which emails exist.
 */
import bcrypt from 'bcrypt';
import { z } from 'zod';
import { isForeignHash, verifyForeignHash } from './foreign-hashes.js';
import type { PasswordContext, PasswordPolicy } from './password-policy.js';

/** A form's new password, typed twice (the account page, a reset link, "Choose a new password"). */
export const newPasswordFields = {
  password: z.string('Enter a new password.').min(1, 'Enter a new password.').max(1024, 'That password is too long.'),
  repeat: z.string('Enter the new password again.').max(1024),
};

/**
 * What a form that takes a new password twice says, as a sentence for the person at it; undefined when the
 * password will do (./password-policy.ts: bcrypt reads at most 72 bytes, so longer ones are refused there).
 */
export async function newPasswordRefusal(policy: PasswordPolicy, password: string, repeat: string, context: PasswordContext): Promise<string | undefined> {
  const problem = password === repeat ? await policy.problem(password, context) : 'the passwords do not match';
  return problem && `${problem.charAt(0).toUpperCase()}${problem.slice(1)}.`;
}

export function hashPassword(password: string, cost: number): Promise<string> {
  return bcrypt.hash(password, cost);
}

/** The cost a stored hash was made with ($2b$12$… → 12). */
export function costOf(hash: string): number {
  return bcrypt.getRounds(hash);
}

export class PasswordHasher {
  #decoy: Promise<string> | undefined;

  constructor(readonly cost: number) {}

  /**
   * Makes the decoy hash now (the server calls this at start-up): made on first use, it would cost the first
   * unknown email a whole extra bcrypt round, which is itself the timing difference the decoy is there to hide.
   */
  async prepareDecoy(): Promise<void> {
    await this.#decoyHash();
  }

  #decoyHash(): Promise<string> {
    this.#decoy ??= hashPassword('decoy password for unknown accounts', this.cost);
    return this.#decoy;
  }

  hash(password: string): Promise<string> {
    return hashPassword(password, this.cost);
  }

  /** Compares in constant time; with no stored hash, burns the same time on a decoy and answers false. */
  async verify(password: string, storedHash: string | null | undefined): Promise<boolean> {
    if (!storedHash) {
      await this.#compareWithDecoy(password);
      return false;
    }
    if (isForeignHash(storedHash)) {
      // An imported PBKDF2 or Argon2 hash is quicker to check than bcrypt; the decoy beside it makes the answer as
      // slow as any other, so that an account not yet signed into since the import cannot be told by timing.
      const [matches] = await Promise.all([verifyForeignHash(password, storedHash), this.#compareWithDecoy(password)]);
      return matches;
    }
    return bcrypt.compare(password, storedHash);
  }

  /** Whether `password` is the one `storedHash` was made from; no decoy, for hashes known to exist. */
  matches(password: string, storedHash: string): Promise<boolean> {
    return isForeignHash(storedHash) ? verifyForeignHash(password, storedHash) : bcrypt.compare(password, storedHash);
  }

  /** One bcrypt comparison's time, spent on the decoy. */
  async #compareWithDecoy(password: string): Promise<void> {
    await bcrypt.compare(password, await this.#decoyHash());
  }

  /** A hash made at another cost, or by another identity provider, is replaced at the next successful sign-in. */
  needsRehash(storedHash: string): boolean {
    return isForeignHash(storedHash) || costOf(storedHash) !== this.cost;
  }
}
