/**
 * Telling a store outage from a bug. When PostgreSQL or Redis cannot be reached (refused, reset, timed out,
 * shutting down, failing over), a request answers 503 with the OAuth error `temporarily_unavailable` and a
 * `Retry-After`, which clients, SDKs and load balancers know to retry, instead of a 500 that reads as a bug here.
 *
 * oidc-provider renders an error it can expose with the error's own status and code, and at the authorization
 * endpoint redirects it to the client (RFC 6749 §4.1.2.1 names `temporarily_unavailable` for this). So every
 * store call the provider makes goes through `translatingStoreErrors` (src/store/adapters.ts) or
 * `rethrowStoreError` (findAccount, src/oidc/provider.ts), and our own routes ask `isStoreOutage` where they
 * turn errors into answers. A raw network error from elsewhere (a client's jwks_uri, say) that reaches one of
 * those places is answered the same way: it too is temporary and not the caller's fault.
 */
import { errors } from 'oidc-provider';
import type { Logger } from '../logger.js';

/** Seconds a client is told to wait: Redis reconnects, and the pool opens fresh connections, well within it. */
export const RETRY_AFTER_SECONDS = 5;

export const OUTAGE_DESCRIPTION = 'the server cannot reach its data store right now; try again shortly';

/** The JSON answer of our own routes, the same as the provider's. */
export const OUTAGE_ANSWER = Object.freeze({ error: 'temporarily_unavailable', error_description: OUTAGE_DESCRIPTION });

/** What a page says instead. */
export const OUTAGE_PAGE_MESSAGE = 'This service is briefly unavailable. Please try again in a moment.';

/** Socket-level failures, on the error or (knex, AggregateError) on what it wraps. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);

/**
 * SQLSTATEs of a server that is there but cannot serve: class 08 (connection exception), 57P01–57P03 (shut down,
 * crashed, not accepting connections yet), 53300 (too many connections), 25006 (read-only: a standby mid-failover),
 * 57014 (a query cancelled, here by DATABASE_QUERY_TIMEOUT: an overloaded server or a lock held elsewhere).
 */
const POSTGRES_UNAVAILABLE = /^(08[0-9A-Z]{3}|57P0[123]|57014|53300|25006)$/;

/** Redis replies of a server that is loading, failing over, or whose cluster is degraded. */
const REDIS_UNAVAILABLE = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

/** ioredis, knex's pool and pg say so in the message only (knex prefixes it with the statement). */
const DRIVER_MESSAGES = [
  'Connection is closed.',
  'Command timed out',
  'Connection terminated',
  'Connection ended unexpectedly',
  'timeout exceeded when trying to connect',
  'Timeout acquiring a connection',
  'All sentinels are unreachable',
  'None of startup nodes is available',
];

/** pg's connect timeout, as bare as that. */
const DRIVER_EXACT_MESSAGES = new Set(['timeout expired']);

const DRIVER_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'KnexTimeoutError', 'ClusterAllFailedError']);

function describesOutage(error: { name?: unknown; code?: unknown; message?: unknown }): boolean {
  const { name, code, message } = error;
  if (typeof name === 'string' && DRIVER_ERROR_NAMES.has(name)) return true;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || POSTGRES_UNAVAILABLE.test(code))) return true;
  if (typeof message !== 'string') return false;
  if (DRIVER_EXACT_MESSAGES.has(message) || REDIS_UNAVAILABLE.test(message)) return true;
  return DRIVER_MESSAGES.some((text) => message.includes(text));
}

/** True when `error` (or what it wraps) says a store could not be reached, rather than that a request was wrong. */
export function isStoreOutage(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 3) return false;
  if (error instanceof StoreUnavailable) return true;
  if (describesOutage(error)) return true;
  const { cause, errors: inner } = error as { cause?: unknown; errors?: unknown };
  if (Array.isArray(inner) && inner.some((each) => isStoreOutage(each, depth + 1))) return true;
  return isStoreOutage(cause, depth + 1);
}

/** ioredis's own errors: a failure of one of these is Redis's, whatever the socket error beneath. */
const REDIS_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);
const REDIS_MESSAGES = ['Connection is closed.', 'All sentinels are unreachable', 'None of startup nodes is available'];

/**
 * Which store an outage is, for an operator's message (the CLI): Redis when the error is one of ioredis's,
 * PostgreSQL otherwise. A bare socket error could be either; the drivers wrap theirs, so it is rarely bare.
 */
export function unreachableStore(error: unknown, depth = 0): 'Redis' | 'PostgreSQL' {
  if (!error || typeof error !== 'object' || depth > 3) return 'PostgreSQL';
  const { name, message, cause } = error as { name?: unknown; message?: unknown; cause?: unknown };
  if (typeof name === 'string' && REDIS_ERROR_NAMES.has(name)) return 'Redis';
  if (typeof message === 'string' && (REDIS_UNAVAILABLE.test(message) || REDIS_MESSAGES.some((text) => message.includes(text)))) return 'Redis';
  return unreachableStore(cause, depth + 1);
}

/**
 * The operator's line for an outage (the CLI, a server that cannot start): "cannot reach PostgreSQL (connect
 * ECONNREFUSED 127.0.0.1:5432): is it running, and does DATABASE_URL point at it?".
 */
export function describeUnreachable(error: unknown): string {
  const store = unreachableStore(error);
  const variable = store === 'Redis' ? 'REDIS_URL' : 'DATABASE_URL';
  // ioredis's own message ("Reached the max retries per request limit…") says nothing an operator can use.
  const detail = store === 'PostgreSQL' && error instanceof Error ? ` (${driverReason(error.message)})` : '';
  return `cannot reach ${store}${detail}: is it running, and does ${variable} point at it?`;
}

/** knex prefixes a failed statement's error with the statement; the driver's reason is what matters here. */
const driverReason = (message: string) => message.split('\n')[0]?.replace(/^.* - /, '') ?? message;

/** What oidc-provider answers with (503, `temporarily_unavailable`); the driver's error stays as the cause. */
export class StoreUnavailable extends errors.OIDCProviderError {
  constructor(cause: unknown) {
    super(503, 'temporarily_unavailable', { cause });
    // The library exposes only errors below 500; this one says nothing about the server but that it will be back.
    this.expose = true;
    this.error_description = OUTAGE_DESCRIPTION;
    // Not the driver's message as error_detail: the audit log records that, and knex puts the statement in it.
    this.error_detail = undefined;
  }
}

/** The one line logged for each request refused for an outage (at warn: the outage itself is no bug of ours). */
export function logRefusedForOutage(logger: Logger, requestId: string | undefined, error: unknown): void {
  logger.warn({ requestId, reason: error instanceof Error ? error.message : String(error) }, 'store unavailable');
}

/**
 * SQLSTATEs of text PostgreSQL cannot hold: a NUL character in a string (22021) or a `\u0000` in jsonb (22P05).
 * Only a request puts one there (a client_id, a state, an e-mail typed at the login form), so it is the
 * request's fault: a 400, not a 500.
 */
const UNSTORABLE_TEXT = new Set(['22021', '22P05']);

export const UNSTORABLE_TEXT_DESCRIPTION = 'a parameter contains a NUL character, which is not allowed';

/** True when the store refused a value because of a NUL character in it. */
export function isUnstorableText(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && UNSTORABLE_TEXT.has(code);
}

/**
 * Rethrows what a store call threw: an outage as StoreUnavailable, text the store cannot hold as the
 * provider's `invalid_request`, anything else unchanged.
 */
export function rethrowStoreError(error: unknown): never {
  if (isUnstorableText(error)) throw new errors.InvalidRequest(UNSTORABLE_TEXT_DESCRIPTION);
  if (error instanceof StoreUnavailable || !isStoreOutage(error)) throw error;
  throw new StoreUnavailable(error);
}

/**
 * `target` with the named async methods translating store errors (each oidc-provider adapter); its
 * other members are reached through the prototype, untouched. One `.catch` per call, no Proxy: these run on
 * every request.
 */
export function translatingStoreErrors<T extends object>(target: T, methods: readonly (keyof T & string)[]): T {
  const translated = Object.create(target) as T;
  for (const name of methods) {
    const method = target[name];
    if (typeof method !== 'function') continue;
    (translated as Record<string, unknown>)[name] = (...args: unknown[]) =>
      (method as (...a: unknown[]) => Promise<unknown>).apply(target, args).catch(rethrowStoreError);
  }
  return translated;
}

/**
 * For the provider's `server_error` event: a store call that did not go through `translatingStoreErrors` (a hook of
 * ours) failed with an outage after the provider had set its 500 JSON answer; make that a 503. True when it did.
 * At the authorization endpoint the event comes before the page (which `renderError` makes a 503 itself).
 */
export function answerOutage(ctx: { status: number; body: unknown }, error: unknown): boolean {
  if (!isStoreOutage(error)) return false;
  if (ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body)) {
    ctx.status = 503;
    ctx.body = OUTAGE_ANSWER;
  }
  return true;
}
