/**
 * The two bearer tokens of dynamic client registration, kept as SHA-256 hashes (they are random, so a hash is
 * enough, and a copy of the tables lets no one in):
 * - initial access tokens (RFC 7591 §3): an administrator's permission to register, good for a number of
 *   registrations until it expires (Keycloak's "Initial access tokens");
 * - registration access tokens (RFC 7592 §1): one per registered client, handed to it at registration, with which it
 *   reads, changes or deletes its registration.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AuditSink } from '../audit/audit-log.js';
import type { Database } from '../store/database.js';

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/** 256 random bits, as the other secrets this server hands out. */
const newToken = () => randomBytes(32).toString('base64url');

export interface InitialAccessToken {
  id: string;
  usesLeft: number;
  expiresAt: Date;
  createdBy: string;
  createdAt: Date;
}

interface InitialTokenRow {
  id: string;
  uses_left: number;
  expires_at: Date;
  created_by: string;
  created_at: Date;
}

const toInitialToken = (row: InitialTokenRow): InitialAccessToken => ({
  id: row.id,
  usesLeft: row.uses_left,
  expiresAt: new Date(row.expires_at),
  createdBy: row.created_by,
  createdAt: new Date(row.created_at),
});

export class RegistrationTokens {
  constructor(
    private readonly db: Database,
    private readonly options: { audit?: AuditSink; actor?: string } = {},
  ) {}

  /** A new initial access token: the token itself, shown once, and its record. */
  async createInitial(options: { uses: number; expiresInSeconds: number }): Promise<{ token: string; record: InitialAccessToken }> {
    const token = newToken();
    const createdBy = this.options.actor ?? 'server';
    const [row] = await this.db('client_registration_tokens')
      .insert({
        id: randomBytes(6).toString('hex'),
        token_hash: hashOf(token),
        uses_left: options.uses,
        expires_at: new Date(Date.now() + options.expiresInSeconds * 1000),
        created_by: createdBy,
      })
      .returning(['id', 'uses_left', 'expires_at', 'created_by', 'created_at']);
    const record = toInitialToken(row as InitialTokenRow);
    this.options.audit?.record({ type: 'client_registration_token_created', outcome: 'success', detail: { by: createdBy, id: record.id, uses: record.usesLeft, expiresAt: record.expiresAt.toISOString() } });
    return { token, record };
  }

  /** The initial access tokens that can still register a client. */
  async listInitial(now = new Date()): Promise<InitialAccessToken[]> {
    const rows: InitialTokenRow[] = await this.db('client_registration_tokens')
      .select('id', 'uses_left', 'expires_at', 'created_by', 'created_at')
      .where('expires_at', '>', now)
      .andWhere('uses_left', '>', 0)
      .orderBy('created_at');
    return rows.map(toInitialToken);
  }

  /** Deletes an initial access token; false when there was none with that id. */
  async revokeInitial(id: string): Promise<boolean> {
    // `returning` rather than the row count, which the embedded driver does not report.
    const deleted = await this.db('client_registration_tokens').where({ id }).delete().returning('id');
    if (deleted.length > 0) this.options.audit?.record({ type: 'client_registration_token_revoked', outcome: 'success', detail: { by: this.options.actor ?? 'server', id } });
    return deleted.length > 0;
  }

  /** The id of the initial access token `token` is, when it can still register a client; nothing is used up. */
  async checkInitial(token: string, now = new Date()): Promise<string | undefined> {
    const row = await this.db('client_registration_tokens')
      .select('id')
      .where({ token_hash: hashOf(token) })
      .andWhere('expires_at', '>', now)
      .andWhere('uses_left', '>', 0)
      .first();
    return row?.id as string | undefined;
  }

  /** Uses up one registration of the token; false when it had none left (another registration took the last). */
  async useInitial(id: string, now = new Date()): Promise<boolean> {
    const used = await this.db('client_registration_tokens')
      .where({ id })
      .andWhere('expires_at', '>', now)
      .andWhere('uses_left', '>', 0)
      .decrement('uses_left', 1)
      .returning('id');
    return used.length > 0;
  }

  /** Records a registered client, with what describes it, and returns the registration access token that manages it. */
  async issueFor(clientId: string, registeredVia: string, description: Record<string, unknown>): Promise<string> {
    const token = newToken();
    await this.db('client_registrations').insert({ client_id: clientId, token_hash: hashOf(token), registered_via: registeredVia, metadata: JSON.stringify(description) });
    return token;
  }

  /** What describes a registered client, as it registered (or last updated) it. */
  async descriptionOf(clientId: string): Promise<Record<string, unknown>> {
    return (await this.registrationOf(clientId))?.description ?? {};
  }

  /** How a client registered itself (`open`, or its initial access token's id) and what describes it; undefined for the others. */
  async registrationOf(clientId: string): Promise<{ via: string; description: Record<string, unknown> } | undefined> {
    const row = await this.db('client_registrations').select('registered_via', 'metadata').where({ client_id: clientId }).first();
    if (!row) return undefined;
    const metadata: unknown = row.metadata;
    const description = typeof metadata === 'string' ? JSON.parse(metadata) : ((metadata as Record<string, unknown> | null) ?? {});
    return { via: row.registered_via as string, description };
  }

  async describe(clientId: string, description: Record<string, unknown>): Promise<void> {
    await this.db('client_registrations').where({ client_id: clientId }).update({ metadata: JSON.stringify(description) });
  }

  /** The client whose registration `token` manages, if any. */
  async clientOf(token: string): Promise<string | undefined> {
    const row = await this.db('client_registrations').select('client_id').where({ token_hash: hashOf(token) }).first();
    return row?.client_id as string | undefined;
  }

  /** How a registered client registered (`open`, or its initial access token's id); undefined for the others. */
  async registeredVia(clientId: string): Promise<string | undefined> {
    const row = await this.db('client_registrations').select('registered_via').where({ client_id: clientId }).first();
    return row?.registered_via as string | undefined;
  }
}
