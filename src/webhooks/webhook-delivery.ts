/**
 * Webhooks (WEBHOOK_URL): the audit log's events (a sign-in, a user created or deleted, a client changed, …) are
 * POSTed to an endpoint of yours as they happen, signed as Standard Webhooks sign them (./signature.ts), so an app
 * can keep its own records in step without polling. The audit table is the outbox:
 *
 * - Events are sent in the order their transactions committed, read in (txid, id) order below the oldest
 *   transaction still open (migrations/20261207_0018_webhooks.ts says why), a batch at a time, each only once
 *   the one before was taken (any 2xx).
 * - Delivery is at least once: an event is sent again when its answer was lost. `webhook-id` is the same each
 *   time, for the receiver to skip what it has.
 * - A failure (an error status, no answer within 10 s, or a refused connection) stops the queue for that event,
 *   and it is tried again after 5 s, 10 s, 20 s, … up to 10 minutes between tries. Nothing is skipped or lost;
 *   events wait in the audit table for as long as AUDIT_RETENTION keeps them.
 * - However many instances and workers run, one sends at a time: each run takes a PostgreSQL advisory lock, and
 *   the position and retry state are kept in `webhook_endpoints`, so the next run (on any instance) goes on from
 *   there. An endpoint set for the first time starts with the events written from then on.
 */
import { type AuditRow, storedAuditEvent } from '../audit/audit-query.js';
import type { Logger } from '../logger.js';
import { type Database, isEmbedded } from '../store/database.js';
import { signatureHeader } from './signature.js';

/** pg_try_advisory_lock key held while sending, so that of many instances only one sends at a time. */
export const WEBHOOK_LOCK_KEY = 72_711_300_002;

const BATCH_SIZE = 100;
const TIMEOUT_MS = 10_000;
const FIRST_RETRY_SECONDS = 5;
const LONGEST_RETRY_SECONDS = 600;

export interface WebhookSettings {
  url: string;
  /** Key bytes of WEBHOOK_SECRET, each of which signs (two during a rotation). */
  keys: Buffer[];
  /** Audit event types sent (`user_*` takes every type beginning so); empty: all. */
  events: string[];
}

/** Deliveries since start, by outcome: read at scrape time (src/metrics/metrics.ts). */
export interface WebhookCounts {
  delivered: number;
  failed: number;
}

type Query = ReturnType<Database['queryBuilder']>;
/** A query as the run sends it: on its locked connection, or on the pool. */
type On = (query: Query) => Query;

interface EndpointRow {
  url: string;
  last_txid: string;
  last_event_id: string;
  failures: number;
  retry_at: Date | null;
}

/** An audit event as the queue reads it, with the transaction that wrote it. */
type EventRow = AuditRow & { txid: string };

/** An endpoint's position and health, for `authz webhooks status`. */
export interface WebhookStatus {
  url: string;
  /** The last event delivered (or skipped); null before the first. */
  lastEventId: string | null;
  /** Events written since that are still to send. */
  pending: number;
  /** Failed tries of the event the queue is held at; 0 when it is not held. */
  failures: number;
  retryAt: Date | null;
  lastError: string | null;
  updatedAt: Date;
}

/** What one run did: events delivered, and whether it stopped at a failure; undefined when another instance was sending. */
export interface WebhookRun {
  delivered: number;
  failed: boolean;
}

export class WebhookDelivery {
  readonly counts: WebhookCounts = { delivered: 0, failed: 0 };

  constructor(
    private readonly db: Database,
    private readonly settings: WebhookSettings,
    private readonly options: { logger?: Pick<Logger, 'warn' | 'info'>; fetch?: typeof fetch } = {},
  ) {}

  /** Sends what is due, unless another instance is sending right now. */
  async run(): Promise<WebhookRun | undefined> {
    if (isEmbedded(this.db)) return this.#send(this.db);
    // The lock belongs to a connection: take one from the pool, and run everything on it.
    const connection = await this.db.client.acquireConnection();
    try {
      const [row] = await this.db.select(this.db.raw('pg_try_advisory_lock(?) as locked', [WEBHOOK_LOCK_KEY])).connection(connection);
      if (!row?.locked) return undefined;
      try {
        return await this.#send(this.db, connection);
      } finally {
        await this.db.select(this.db.raw('pg_advisory_unlock(?)', [WEBHOOK_LOCK_KEY])).connection(connection);
      }
    } finally {
      await this.db.client.releaseConnection(connection);
    }
  }

  async #send(db: Database, connection?: unknown): Promise<WebhookRun> {
    // On the connection that holds the lock, where there is one: a pool of one then still works.
    const on: On = (query) => (connection ? query.connection(connection) : query);
    const endpoint = await this.#endpoint(db, on);
    if (endpoint.retry_at && endpoint.retry_at > new Date()) return { delivered: 0, failed: false };
    const events = (await on(
      this.#pending(db, endpoint)
        .select('id', db.raw('txid::text as txid'), 'at', 'type', 'outcome', 'account_id', 'client_id', 'ip', 'user_agent', 'request_id', 'detail')
        .orderBy([{ column: 'txid' }, { column: 'id' }])
        .limit(BATCH_SIZE),
    )) as EventRow[];
    let delivered = 0;
    for (const event of events) {
      const problem = await this.#post(event);
      if (problem) {
        await this.#failed(db, on, endpoint, event, problem);
        return { delivered, failed: true };
      }
      await on(db('webhook_endpoints').where({ url: this.settings.url }).update({ last_txid: db.raw('?::xid8', [event.txid]), last_event_id: event.id, failures: 0, retry_at: null, last_error: null, updated_at: db.fn.now() }));
      delivered += 1;
      this.counts.delivered += 1;
    }
    return { delivered, failed: false };
  }

  /** The endpoint's position, made at the current end of the log the first time (events from then on are sent). */
  async #endpoint(db: Database, on: On): Promise<EndpointRow> {
    const select = async () =>
      (await on(db('webhook_endpoints').select('url', db.raw('last_txid::text as last_txid'), 'last_event_id', 'failures', 'retry_at').where({ url: this.settings.url }).first())) as
        | EndpointRow
        | undefined;
    const found = await select();
    if (found) return found;
    // Everything below the oldest open transaction is the past; what that transaction and later ones write is sent.
    await on(
      db('webhook_endpoints')
        .insert({ url: this.settings.url, last_txid: db.raw('pg_snapshot_xmin(pg_current_snapshot())'), last_event_id: 0 })
        .onConflict('url')
        .ignore(),
    );
    this.options.logger?.info({ url: this.settings.url }, 'webhook endpoint set: audit events from now on are sent to it');
    return (await select()) as EndpointRow;
  }

  /** The events still to send after the endpoint's position, as far as they are final. */
  #pending(db: Database, endpoint: Pick<EndpointRow, 'last_txid' | 'last_event_id'>): Query {
    return (
      db('audit_events')
        .whereRaw('(txid, id) > (?::xid8, ?::bigint)', [endpoint.last_txid, endpoint.last_event_id])
        // Only transactions that have ended: an open one could still commit events that come before these.
        .whereRaw('txid < pg_snapshot_xmin(pg_current_snapshot())')
        .modify((query) => this.#onlyWanted(query))
    );
  }

  /** Where the endpoint stands (`authz webhooks status`): undefined before its first run. */
  async status(): Promise<WebhookStatus | undefined> {
    const endpoint = (await this.db('webhook_endpoints')
      .select('url', this.db.raw('last_txid::text as last_txid'), 'last_event_id', 'failures', 'retry_at', 'last_error', 'updated_at')
      .where({ url: this.settings.url })
      .first()) as (EndpointRow & { last_error: string | null; updated_at: Date }) | undefined;
    if (!endpoint) return undefined;
    const [{ count } = { count: 0 }] = (await this.#pending(this.db, endpoint).count({ count: '*' })) as { count: string | number }[];
    return {
      url: endpoint.url,
      lastEventId: endpoint.last_event_id === '0' ? null : String(endpoint.last_event_id),
      pending: Number(count),
      failures: endpoint.failures,
      retryAt: endpoint.retry_at,
      lastError: endpoint.last_error,
      updatedAt: endpoint.updated_at,
    };
  }

  /** Tries the held event at the next run instead of waiting out the retry (the endpoint is back). */
  async retryNow(): Promise<boolean> {
    return (await this.db('webhook_endpoints').where({ url: this.settings.url }).update({ retry_at: null, updated_at: this.db.fn.now() })) > 0;
  }

  /**
   * Skips the event the queue is held at (one the endpoint will never take), so the next run goes on with the one
   * after; the event, or undefined when none is waiting. An administrator's choice: audited by the caller.
   */
  async skipHeld(): Promise<{ id: string; type: string } | undefined> {
    return this.db.transaction(async (trx) => {
      const endpoint = (await trx('webhook_endpoints').select(trx.raw('last_txid::text as last_txid'), 'last_event_id').where({ url: this.settings.url }).forUpdate().first()) as
        | Pick<EndpointRow, 'last_txid' | 'last_event_id'>
        | undefined;
      if (!endpoint) return undefined;
      const held = (await this.#pending(trx, endpoint).select('id', 'type', trx.raw('txid::text as txid')).orderBy([{ column: 'txid' }, { column: 'id' }]).first()) as
        | { id: string; type: string; txid: string }
        | undefined;
      if (!held) return undefined;
      await trx('webhook_endpoints')
        .where({ url: this.settings.url })
        .update({ last_txid: trx.raw('?::xid8', [held.txid]), last_event_id: held.id, failures: 0, retry_at: null, last_error: null, updated_at: trx.fn.now() });
      return { id: String(held.id), type: held.type };
    });
  }

  #onlyWanted(query: Query): void {
    const { events } = this.settings;
    if (events.length === 0) return;
    const exact = events.filter((name) => !name.endsWith('*'));
    const prefixes = events.filter((name) => name.endsWith('*')).map((name) => `${name.slice(0, -1).replaceAll('_', '\\_')}%`);
    query.where((wanted) => {
      if (exact.length > 0) wanted.whereIn('type', exact);
      for (const prefix of prefixes) wanted.orWhere('type', 'like', prefix);
    });
  }

  /** Posts one event; undefined when it was taken, else why not. */
  async #post(event: EventRow): Promise<string | undefined> {
    const id = `evt_${event.id}`;
    const timestamp = Math.floor(Date.now() / 1000);
    // The audit record as `authz audit search` and the admin API show it.
    const body = JSON.stringify({ type: event.type, timestamp: event.at.toISOString(), data: storedAuditEvent(event) });
    try {
      const response = await (this.options.fetch ?? fetch)(this.settings.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'authz-webhooks',
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(this.settings.keys, id, timestamp, body),
        },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      // The body is not read: only the status says whether it was taken.
      await response.body?.cancel();
      return response.ok ? undefined : `the endpoint answered ${response.status}`;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return `the endpoint could not be reached (${cause ?? (error as Error).message})`;
    }
  }

  async #failed(db: Database, on: On, endpoint: EndpointRow, event: EventRow, problem: string): Promise<void> {
    const failures = endpoint.failures + 1;
    const waitSeconds = Math.min(FIRST_RETRY_SECONDS * 2 ** (failures - 1), LONGEST_RETRY_SECONDS);
    await on(
      db('webhook_endpoints')
        .where({ url: this.settings.url })
        .update({ failures, retry_at: new Date(Date.now() + waitSeconds * 1000), last_error: problem.slice(0, 500), updated_at: db.fn.now() }),
    );
    this.counts.failed += 1;
    this.options.logger?.warn({ url: this.settings.url, event: event.id, type: event.type, failures, retryInSeconds: waitSeconds, reason: problem }, 'webhook not delivered; it is tried again later');
  }
}

/** Runs the delivery every `intervalMs` (a second) until stopped; a run still going is not started again. */
export function scheduleWebhooks(delivery: WebhookDelivery, logger: Logger, intervalMs = 1000): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = delivery
      .run()
      .then(() => undefined)
      .catch((error: unknown) => logger.error({ err: error }, 'webhook delivery failed to read or write its position'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
