/**
 * The audit log (`audit_events`): who did what, from where, with what outcome. Writers call `record`, which only
 * appends to an in-memory buffer; a timer writes the buffer in one batched insert. So recording never blocks or
 * fails a user request: a failed write is logged and retried once with the next batch, and `close` flushes what
 * is left on shutdown. Secrets and tokens are never recorded (the detail is checked for them). With AUDIT_TO_LOG
 * each event is also one line of the log (`"msg":"audit"`), whatever LOG_LEVEL says, for a log pipeline or SIEM
 * that reads the server's output (as Keycloak's logging event listener gives one).
 */
import type { Database } from '../store/database.js';
import { run, statement } from '../store/prepared-statements.js';
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
  /**
   * Writes what is buffered. For a caller recording more events at once than the buffer keeps (an import of
   * many users), between its chunks; sinks that wrap another pass it on.
   */
  flush?(): Promise<void>;
}

/** Keys that must never reach the audit table, whatever a caller puts in `detail`. */
const FORBIDDEN_DETAIL = /^(password|secret|client_secret|token|access_token|refresh_token|id_token|code|cookie|authorization)$/i;

function sanitize(detail: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!detail) return {};
  return Object.fromEntries(Object.entries(detail).filter(([key]) => !FORBIDDEN_DETAIL.test(key)));
}

const MAX_BUFFER = 10_000;

/**
 * One bind parameter for the whole batch (a JSON array turned into rows by Postgres), rather than nine per event:
 * the statement costs the same to build at 10 events as at 10,000, and no batch can pass Postgres's limit of
 * 65,535 parameters (which a batch of 7,282 events, left after an outage, would).
 */
const INSERT_BATCH = statement(
  'audit_events_insert_batch',
  `insert into audit_events (at, type, outcome, account_id, client_id, ip, user_agent, request_id, detail)
   select at, type, outcome, account_id, client_id, ip, user_agent, request_id, coalesce(detail, '{}'::jsonb)
   from jsonb_to_recordset($1::jsonb) as event(
     at timestamptz, type text, outcome text, account_id text, client_id text, ip text, user_agent text,
     request_id text, detail jsonb
   )`,
);

/** Postgres text and jsonb cannot hold NUL; one in a submitted e-mail must not make the batch fail. */
const withoutNul = (_key: string, value: unknown) => (typeof value === 'string' && value.includes('\u0000') ? value.replaceAll('\u0000', '') : value);

type Buffered = AuditEvent & { at: Date; attempts: number };

/** What an operator watches (src/metrics/metrics.ts): counts since the process started. */
export interface AuditLogStats {
  /** Events waiting for the next batch. */
  buffered: number;
  /** Events lost: pushed out of a full buffer, or in a batch that failed twice. */
  dropped: number;
  /** Batches the database refused or could not be reached for. */
  failedWrites: number;
}

export class AuditLog implements AuditSink {
  #buffer: Buffered[] = [];
  /** Dropped since the last error log line, and since start. */
  #dropped = 0;
  #droppedTotal = 0;
  #failedWrites = 0;
  #flushing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;
  /** Where each event is also written as a log line (AUDIT_TO_LOG); undefined: the table only. */
  readonly #lines?: Logger;

  constructor(
    private readonly db: Database,
    private readonly logger?: Logger,
    options: { flushIntervalMs?: number; toLog?: boolean } = {},
  ) {
    this.#timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 500).unref();
    // Its own level: the audit trail is not debugging output that LOG_LEVEL=warn should silence.
    if (options.toLog && logger) this.#lines = logger.child({}, { level: 'info' });
  }

  record(event: AuditEvent): void {
    if (this.#buffer.length >= MAX_BUFFER) {
      // The database has been unreachable for a while: keep the newest events. A tenth at once, so that a full
      // buffer does not cost a shift of 10,000 entries per request.
      const excess = Math.ceil(MAX_BUFFER / 10);
      this.#buffer.splice(0, excess);
      this.#dropped += excess;
      this.#droppedTotal += excess;
    }
    this.#buffer.push({ ...event, at: new Date(), attempts: 0 });
  }

  /** Writes what is buffered; concurrent calls queue behind each other. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write());
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#dropped > 0) {
      this.logger?.error({ events: this.#dropped }, 'audit events dropped: the buffer was full while the database could not be written');
      this.#dropped = 0;
    }
    if (this.#buffer.length === 0) return;
    const batch = this.#buffer;
    this.#buffer = [];
    const rows = batch.map((event) => ({
      at: event.at.toISOString(),
      type: event.type,
      outcome: event.outcome,
      account_id: event.accountId ?? null,
      client_id: event.clientId ?? null,
      ip: event.ip ?? null,
      user_agent: event.userAgent?.slice(0, 512) ?? null,
      request_id: event.requestId ?? null,
      detail: sanitize(event.detail),
    }));
    this.#writeLines(batch, rows);
    try {
      await run(this.db, INSERT_BATCH, [JSON.stringify(rows, withoutNul)]);
    } catch (error) {
      // Retried once, with the next batch; what fails twice is dropped, so one bad event cannot block the log.
      const retry = batch.filter((event) => event.attempts === 0).map((event) => ({ ...event, attempts: 1 }));
      this.#failedWrites++;
      this.#droppedTotal += batch.length - retry.length;
      this.logger?.error(
        { err: error, events: batch.length, dropped: batch.length - retry.length },
        'audit events could not be written; retrying once with the next batch',
      );
      this.#buffer = [...retry, ...this.#buffer].slice(-MAX_BUFFER);
    }
  }

  /** Once per event: not again when its batch is retried. */
  #writeLines(batch: Buffered[], rows: { at: string; detail: Record<string, unknown> }[]): void {
    if (!this.#lines) return;
    batch.forEach((event, index) => {
      if (event.attempts > 0) return;
      const { type, outcome, accountId, clientId, ip, userAgent, requestId } = event;
      this.#lines?.info({ audit: { at: rows[index]?.at, type, outcome, accountId, clientId, ip, userAgent, requestId, detail: rows[index]?.detail } }, 'audit');
    });
  }

  get stats(): AuditLogStats {
    return { buffered: this.#buffer.length, dropped: this.#droppedTotal, failedWrites: this.#failedWrites };
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
