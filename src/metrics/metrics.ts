/**
 * Prometheus metrics (prom-client): HTTP traffic by route and status with latency, protocol outcomes (tokens by
 * grant type and client, sign-ins, locks, refresh-token reuse, client-authentication failures, back-channel logout
 * deliveries), store latency and errors, signing-key states, the audit log's backlog and losses, and the process's
 * own metrics. Protocol outcomes are counted from the audit events (`countingAuditSink`), so no handler carries
 * metrics code.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditEvent, AuditLogStats, AuditSink } from '../audit/audit-log.js';
import type { KeyStatus } from '../keys/key-states.js';
import type { TokenRecordCacheStats } from '../store/token-record-cache.js';
import type { WebhookCounts } from '../webhooks/webhook-delivery.js';
import type { BreachLookupCounts } from '../accounts/breached-passwords.js';

export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'authz_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'authz_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route', 'method'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly tokensIssued = new Counter({
    name: 'authz_tokens_issued_total',
    help: 'Token responses by grant type and client',
    labelNames: ['grant_type', 'client_id'] as const,
    registers: [this.registry],
  });

  readonly signIns = new Counter({
    name: 'authz_sign_ins_total',
    help: 'Sign-in attempts by outcome: success, failure (wrong credentials), locked (refused while locked)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly lockouts = new Counter({
    name: 'authz_lockouts_total',
    help: 'Locks for too many failures: by account or ip (sign-in), by client or client_ip (client authentication)',
    labelNames: ['by'] as const,
    registers: [this.registry],
  });

  readonly refreshReuse = new Counter({
    name: 'authz_refresh_token_reuse_total',
    help: 'Rotated refresh tokens presented again: detected (grant revoked) or within the grace window',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly clientAuthFailures = new Counter({
    name: 'authz_client_auth_failures_total',
    help: 'Failed client authentications at the token, introspection and revocation endpoints',
    registers: [this.registry],
  });

  readonly backchannelLogouts = new Counter({
    name: 'authz_backchannel_logouts_total',
    help: 'Logout tokens sent to clients (back-channel logout) by outcome: success, or failure (unreachable, slow, or an error status)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly mailSent = new Counter({
    name: 'authz_mail_sent_total',
    help: 'Mail sent by kind (password_reset, email_confirmation) and outcome: success, or failure (the relay refused it or could not be reached)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly storeDuration = new Histogram({
    name: 'authz_store_operation_duration_seconds',
    help: 'Latency of storage operations by store (postgres, redis) and operation',
    labelNames: ['store', 'operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  readonly storeErrors = new Counter({
    name: 'authz_store_errors_total',
    help: 'Failed storage operations by store and operation',
    labelNames: ['store', 'operation'] as const,
    registers: [this.registry],
  });

  readonly #keyStates = new Gauge({
    name: 'authz_signing_keys',
    help: 'Signing keys by algorithm (RS256; PS256, ES256, EdDSA where keys/ holds keys for them) and state (next, current, previous, expired)',
    labelNames: ['alg', 'state'] as const,
    registers: [this.registry],
    // Every worker reads the same keys: summed over the workers (METRICS_PORT) they would be counted once each.
    aggregator: 'max',
  });

  constructor(options: { keyStatuses: () => readonly KeyStatus[]; defaultMetrics?: boolean }) {
    const gauge = this.#keyStates;
    // Computed at scrape time from the key ring, so it is never stale.
    Object.assign(gauge, {
      collect() {
        gauge.reset();
        const statuses = options.keyStatuses();
        // Every state of each algorithm present, zeros too, so that "no current key" is a value an alert can see.
        for (const alg of new Set(statuses.map((status) => status.alg ?? 'RS256'))) {
          for (const state of ['next', 'current', 'previous', 'expired']) gauge.set({ alg, state }, 0);
        }
        for (const status of statuses) gauge.inc({ alg: status.alg ?? 'RS256', state: status.state });
      },
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'authz_' });
  }

  /** Webhook deliveries (src/webhooks/webhook-delivery.ts), read at scrape time: a failure holds the queue until retried. */
  observeWebhooks(counts: () => Readonly<WebhookCounts>): void {
    this.#countersReading(
      'authz_webhook_deliveries_total',
      'Audit events POSTed to WEBHOOK_URL by outcome: delivered (a 2xx), or failed (an error status, a timeout or no connection: tried again later)',
      'outcome',
      () => ({ ...counts() }),
    );
  }

  /**
   * Lookups of new passwords among breached ones (src/accounts/breached-passwords.ts), read at scrape time.
   * `unavailable` counts passwords that went through unchecked because the range API failed or was slow: alert on
   * its rate, as the log's warnings are easy to miss.
   */
  observeBreachLookups(counts: () => Readonly<BreachLookupCounts>): void {
    this.#countersReading(
      'authz_password_breach_lookups_total',
      'New passwords looked up among breached passwords by outcome: breached (refused), clean, or unavailable (the range API failed: let through unchecked)',
      'outcome',
      () => ({ ...counts() }),
    );
  }

  /**
   * The token-record cache (src/store/token-record-cache.ts), read at scrape time: the cache counts in plain
   * integers, so a lookup on the hot path pays no label hashing. Across cluster workers the counts and entries
   * add up, and `live` is the least of them: 0 when any worker keeps nothing, because its broadcast is down or
   * not yet started (a worker subscribes at its first token lookup).
   */
  observeTokenCache(stats: () => TokenRecordCacheStats): void {
    this.#countersReading(
      'authz_token_cache_lookups_total',
      'Access-token record lookups by result: hit (answered from process memory) or miss (read from Redis)',
      'result',
      () => {
        const { hits, misses } = stats();
        return { hit: hits, miss: misses };
      },
    );
    this.#gaugeReading('authz_token_cache_entries', 'Access-token records kept in process memory', () => stats().entries);
    this.#gaugeReading(
      'authz_token_cache_live',
      '1 while the deletion broadcast is live and records are kept; 0 when it is down, not yet started (no token looked up yet) or keeping is off',
      () => (stats().live ? 1 : 0),
      'min',
    );
  }

  /**
   * The audit log's own health, read at scrape time: events waiting to be written, and what was lost while the
   * database could not take them (an alert on `authz_audit_events_dropped_total` tells that the log has gaps).
   */
  observeAuditLog(stats: () => AuditLogStats): void {
    this.#gaugeReading('authz_audit_events_buffered', 'Audit events waiting for their batched write', () => stats().buffered);
    this.#counterReading(
      'authz_audit_events_dropped_total',
      'Audit events lost: pushed out of the full buffer, or in a batch that failed twice while the database could not be written',
      () => stats().dropped,
    );
    this.#counterReading(
      'authz_audit_write_failures_total',
      'Batched audit writes that failed (each is retried once with the next batch)',
      () => stats().failedWrites,
    );
  }

  /** A gauge whose value is read at scrape time; `aggregator` says how workers' values combine (METRICS_PORT). */
  #gaugeReading(name: string, help: string, read: () => number, aggregator?: 'min' | 'max'): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      ...(aggregator ? { aggregator } : {}),
      collect() {
        this.set(read());
      },
    });
  }

  /**
   * A counter of one label whose values are read at scrape time, `read` giving each value its count: what counts
   * in plain integers pays no label hashing where it counts.
   */
  #countersReading(name: string, help: string, label: string, read: () => Record<string, number>): void {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [value, count] of Object.entries(read())) this.inc({ [label]: value }, count);
      },
    });
  }

  /** A counter whose total is kept by its owner in a plain integer and read at scrape time. */
  #counterReading(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  /** Counts what the audit log records, then passes each event on. */
  countingAuditSink(next: AuditSink): AuditSink {
    return {
      record: (event: AuditEvent) => {
        this.#count(event);
        next.record(event);
      },
      flush: () => next.flush?.() ?? Promise.resolve(),
    };
  }

  #count(event: AuditEvent): void {
    switch (event.type) {
      case 'token_issued':
        this.tokensIssued.inc({ grant_type: String(event.detail?.grantType ?? 'unknown'), client_id: event.clientId ?? 'unknown' });
        break;
      case 'sign_in':
        this.signIns.inc({ outcome: event.detail?.reason === 'locked' ? 'locked' : event.outcome });
        break;
      case 'sign_in_locked':
        this.lockouts.inc({ by: event.detail?.by === 'account' ? 'account' : 'ip' });
        break;
      case 'client_auth_locked':
        this.lockouts.inc({ by: event.detail?.by === 'client' ? 'client' : 'client_ip' });
        break;
      case 'refresh_reuse_detected':
        this.refreshReuse.inc({ kind: 'detected' });
        break;
      case 'refresh_reuse_in_grace':
        this.refreshReuse.inc({ kind: 'grace' });
        break;
      case 'client_auth_failed':
        this.clientAuthFailures.inc();
        break;
      case 'backchannel_logout':
        this.backchannelLogouts.inc({ outcome: event.outcome });
        break;
      case 'mail_sent':
        this.mailSent.inc({ kind: String(event.detail?.kind ?? 'unknown'), outcome: event.outcome });
        break;
    }
  }
}
