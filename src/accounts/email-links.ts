/**
 * Links sent by mail that let a person do one thing without signing in: choose a new password, confirm their
 * email address, or confirm a new one. Each carries a 256-bit random secret; the `email_links` table keeps only its SHA-256 hash, the
 * user, the address it was sent to and when it expires. A link works once: it is redeemed by deleting its row, in
 * the transaction that makes its change.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Database } from '../store/database.js';

/** `email_change`: sent to a new address, whose confirmation makes it the account's. */
export type EmailLinkPurpose = 'password_reset' | 'email_confirmation' | 'email_change';

export interface EmailLink {
  userId: string;
  /** The address it was sent to. */
  email: string;
  createdAt: Date;
  expiresAt: Date;
}

interface EmailLinkRow {
  token_hash: string;
  purpose: EmailLinkPurpose;
  user_id: string;
  email: string;
  created_at: Date;
  expires_at: Date;
}

/** 32 random bytes, base64url: what a link's secret looks like, checked before any query. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

const hashOf = (token: string) => createHash('sha256').update(token).digest('base64url');

const toLink = (row: EmailLinkRow): EmailLink => ({ userId: row.user_id, email: row.email, createdAt: row.created_at, expiresAt: row.expires_at });

export class EmailLinks {
  constructor(
    private readonly db: Database,
    /** How long a new link works. */
    readonly ttlSeconds: number,
  ) {}

  /** A new link's secret, for the user at the address it is sent to. */
  async issue(user: { id: string; email: string }, purpose: EmailLinkPurpose): Promise<{ token: string; expiresAt: Date }> {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + this.ttlSeconds * 1000);
    await this.db<EmailLinkRow>('email_links').insert({ token_hash: hashOf(token), purpose, user_id: user.id, email: user.email, expires_at: expiresAt });
    return { token, expiresAt };
  }

  /** The link, while it works; undefined for one that never existed, was used or has expired. Does not use it. */
  async find(token: unknown, purpose: EmailLinkPurpose): Promise<EmailLink | undefined> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
    const row = await this.db<EmailLinkRow>('email_links')
      .where({ token_hash: hashOf(token), purpose })
      .andWhere('expires_at', '>', this.db.fn.now())
      .first();
    return row && toLink(row);
  }

  /** Whether the user has a link of `purpose` that still works (so that a page shown again mails no second one). */
  async hasLive(userId: string, purpose: EmailLinkPurpose): Promise<boolean> {
    const row = await this.db('email_links').where({ user_id: userId, purpose }).andWhere('expires_at', '>', this.db.fn.now()).first(this.db.raw('1 as live'));
    return row !== undefined;
  }

  /**
   * Uses the link up within `trx`, the transaction that makes its change: it is deleted, and returned when it
   * still worked. Two requests with the same link cannot both have it: the second finds no row.
   */
  async redeem(trx: Database, token: unknown, purpose: EmailLinkPurpose): Promise<EmailLink | undefined> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
    // An expired link's row is left for pruning; its expiry is judged by the database's clock, as `find` judges it.
    const [row] = await trx<EmailLinkRow>('email_links')
      .where({ token_hash: hashOf(token), purpose })
      .andWhere('expires_at', '>', trx.fn.now())
      .del()
      .returning('*');
    return row && toLink(row as EmailLinkRow);
  }
}
