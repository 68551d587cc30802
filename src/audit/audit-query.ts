/** Reading the audit log (`authz audit tail|search`, the admin API). Newest first, filtered, paged. */
import type { Database } from '../store/database.js';
import type { StoredAuditEvent } from './audit-log.js';

export interface AuditQuery {
  type?: string;
  accountId?: string;
  clientId?: string;
  since?: Date;
  until?: Date;
  limit?: number;
  /** Only events with an id below this (the next page). */
  before?: string;
}

/** An `audit_events` row as it is read. */
export interface AuditRow {
  id: string;
  at: Date;
  type: string;
  outcome: 'success' | 'failure';
  account_id: string | null;
  client_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  detail: Record<string, unknown>;
}

export async function queryAuditEvents(db: Database, query: AuditQuery = {}): Promise<StoredAuditEvent[]> {
  const rows: AuditRow[] = await db<AuditRow>('audit_events')
    .modify((q) => {
      if (query.type) q.where('type', query.type);
      if (query.accountId) q.where('account_id', query.accountId);
      if (query.clientId) q.where('client_id', query.clientId);
      if (query.since) q.where('at', '>=', query.since);
      if (query.until) q.where('at', '<', query.until);
      if (query.before) q.where('id', '<', query.before);
    })
    .orderBy('id', 'desc')
    .limit(Math.min(query.limit ?? 50, 1000));
  return rows.map(storedAuditEvent);
}

/** A row as the CLI, the admin API and webhooks show it. */
export function storedAuditEvent(row: AuditRow): StoredAuditEvent {
  return {
    id: String(row.id),
    at: row.at,
    type: row.type,
    outcome: row.outcome,
    accountId: row.account_id,
    clientId: row.client_id,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    detail: row.detail,
  };
}
