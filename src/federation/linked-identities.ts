/**
 * `linked_identities` (migration 0014): which of our accounts a person's account at another identity provider
 * signs in to. A link is made at a first sign-in with the provider (a new account, or an existing one proved with
 * its password or, where the provider is trusted for it, by its confirmed address), and removed by the person on
 * their account page, by an administrator, or with the account.
 */
import type { AuditSink } from '../audit/audit-log.js';
import { NotFoundError } from '../errors.js';
import { type Database, isUniqueViolation } from '../store/database.js';

export interface LinkedIdentity {
  provider: string;
  subject: string;
  userId: string;
  /** The address the provider gave at the last sign-in. */
  email: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
}

interface LinkedIdentityRow {
  provider: string;
  subject: string;
  user_id: string;
  email: string | null;
  created_at: Date;
  last_used_at: Date | null;
}

const toLinkedIdentity = (row: LinkedIdentityRow): LinkedIdentity => ({
  provider: row.provider,
  subject: row.subject,
  userId: row.user_id,
  email: row.email,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

export class LinkedIdentities {
  constructor(
    private readonly db: Database,
    private readonly options: { audit?: AuditSink; actor?: string } = {},
  ) {}

  /** The account this provider's subject signs in to, if linked; the link's use is recorded. */
  async signIn(provider: string, subject: string, email: string | undefined): Promise<string | undefined> {
    const [row] = await this.db<LinkedIdentityRow>('linked_identities')
      .where({ provider, subject })
      .update({ last_used_at: new Date(), ...(email ? { email } : {}) })
      .returning('user_id');
    return row?.user_id;
  }

  /**
   * Links `subject` at `provider` to the account. False when the account has another account of this provider
   * linked already, or this subject is linked to another account (a race with another tab): nothing is changed.
   */
  async link(userId: string, provider: string, subject: string, email: string | undefined): Promise<boolean> {
    try {
      await this.db('linked_identities').insert({ provider, subject, user_id: userId, email: email ?? null, last_used_at: new Date() });
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
    this.#record('identity_linked', userId, { provider, email });
    return true;
  }

  async listFor(userId: string, db: Database = this.db): Promise<LinkedIdentity[]> {
    const rows = await db<LinkedIdentityRow>('linked_identities').where({ user_id: userId }).orderBy('created_at');
    return rows.map(toLinkedIdentity);
  }

  /** Removes the account's link to `provider`; NotFoundError when there is none. `actor`: who, when not ours. */
  async unlink(userId: string, provider: string, actor?: string, db: Database = this.db): Promise<LinkedIdentity> {
    const [row] = await db<LinkedIdentityRow>('linked_identities').where({ user_id: userId, provider }).delete().returning('*');
    if (!row) throw new NotFoundError(`the account has no sign-in with ${provider} linked`);
    this.#record('identity_unlinked', userId, { provider, email: row.email }, actor);
    return toLinkedIdentity(row);
  }

  #record(type: string, userId: string, detail: Record<string, unknown>, actor = this.options.actor ?? 'self'): void {
    this.options.audit?.record({ type, outcome: 'success', accountId: userId, detail: { by: actor, ...detail } });
  }
}
