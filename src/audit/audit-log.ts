/**
 * The audit log (`audit_events`): who did what, from where, with what outcome. Writers call `record`, which only
 * appends to an in-memory buffer; a timer writes the buffer in one batched insert. So recording never blocks or
 * fails a user request: a failed write is logged and retried once with the next batch, and `close` flushes what
 * is left on shutdown. Secrets and tokens are never recorded (the detail is checked for them).
 */
import type { Database } from '../store/database.js';
import type { Logger } from '../logger.js';

export type AuditOutcome = 'success' | 'failure';

export interface AuditEvent {
  type: string;
  outcome: AuditOutcome;
  accountId?: string | null;
  clientId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
  detail?: Record<string, unknown>;
}

export interface StoredAuditEvent extends AuditEvent {
  id: string;
  at: Date;
}

/** Where events go; the repositories and handlers depend on this, not on the table. */
export interface AuditSink {
  record(event: AuditEvent): void;
}

/** Keys that must never reach the audit table, whatever a caller puts in `detail`. */
const FORBIDDEN_DETAIL = /^(password|secret|client_secret|token|access_token|refresh_token|id_token|code|cookie|authorization)$/i;

function sanitize(detail: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!detail) return {};
  return Object.fromEntries(Object.entries(detail).filter(([key]) => !FORBIDDEN_DETAIL.test(key)));
}

const MAX_BUFFER = 10_000;

export class AuditLog implements AuditSink {
  #buffer: (AuditEvent & { at: Date })[] = [];
  #flushing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly db: Database,
    private readonly logger?: Logger,
    flushIntervalMs = 500,
  ) {
    this.#timer = setInterval(() => void this.flush(), flushIntervalMs).unref();
  }

  record(event: AuditEvent): void {
    if (this.#buffer.length >= MAX_BUFFER) {
      // The database has been unreachable for a while: keep the newest events, say so once per batch.
      this.#buffer.shift();
    }
    this.#buffer.push({ ...event, at: new Date() });
  }

  /** Writes what is buffered; concurrent calls queue behind each other. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write());
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const batch = this.#buffer;
    this.#buffer = [];
    try {
      await this.db('audit_events').insert(
        batch.map((event) => ({
          at: event.at,
          type: event.type,
          outcome: event.outcome,
          account_id: event.accountId ?? null,
          client_id: event.clientId ?? null,
          ip: event.ip ?? null,
          user_agent: event.userAgent?.slice(0, 512) ?? null,
          request_id: event.requestId ?? null,
          detail: JSON.stringify(sanitize(event.detail)),
        })),
      );
    } catch (error) {
      this.logger?.error({ err: error, events: batch.length }, 'audit events could not be written; retrying with the next batch');
      this.#buffer = [...batch, ...this.#buffer].slice(-MAX_BUFFER);
    }
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
