/**
 * OpenID Connect Back-Channel Logout 1.0: when a user's session ends, each client used in it that registered a
 * back-channel logout URI (src/clients/backchannel-logout-uris.ts) is sent a logout token, a JWT naming the user
 * (`sub`) and, unless the client said otherwise, its session (`sid`), signed with the provider's current key by
 * oidc-provider's own `Client#backchannelLogout`. Every outcome is audited (`backchannel_logout`, success or
 * failure with the reason) and a failure is logged too. Nothing is retried: a relying party that missed the token
 * still finds the session gone at its next authorization request, and its tokens revoked.
 *
 * Sessions end in two ways:
 * - the user logs out at /session/end. oidc-provider then calls `backchannelLogout` for each client and waits for
 *   every answer (up to its fetch timeout of 2.5 s) before it lets the browser go; `deliverInBackground` turns
 *   that call into the start of a delivery, so a relying party that is down or slow costs the user nothing;
 * - an administrator ends them (src/accounts/sessions.ts), and `BackchannelLogoutNotifier` sends the tokens.
 */
import Provider, { type Client } from 'oidc-provider';
import type { EndedSession, SessionEndListener } from '../accounts/sessions.js';
import type { AuditSink } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import type { Logger } from '../logger.js';
import type { Catalog } from './catalog.js';

/** oidc-provider's `Client#backchannelLogout`, which its type definitions leave out. */
type LogoutSender = (this: Client, sub: string, sid: string | undefined) => Promise<void>;
type WithSender = { backchannelLogout: LogoutSender };

/** Who is logged out of which client, with the `sid` that client was given for the session. */
export interface LogoutTarget {
  clientId: string;
  sub: string;
  sid?: string;
}

/** What started a delivery, for its audit event. */
export interface DeliveryFacts {
  /** `logout`: the user, at /session/end; `session_ended`: an administrator. */
  trigger: 'logout' | 'session_ended';
  /** The administrator's channel (`cli`, `admin-api`). */
  by?: string;
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
}

export interface DeliveryOutcome {
  clientId: string;
  ok: boolean;
  reason?: string;
}

/** The library's own sender, for each Client class whose method `deliverInBackground` replaced. */
const librarySenders = new WeakMap<object, LogoutSender>();

/** Signs a logout token for `client` and POSTs it, waiting for the answer (oidc-provider's code, not ours). */
export function sendLogoutToken(client: Client, sub: string, sid: string | undefined): Promise<void> {
  const send = librarySenders.get(Object.getPrototypeOf(client)) ?? (client as unknown as WithSender).backchannelLogout;
  return send.call(client, sub, sid);
}

/**
 * The deliveries under way in this process: each runs beside whatever started it, and is audited when it ends.
 * Shutdown and the CLI wait for them (`settled`), so none is cut off unrecorded.
 */
export class LogoutTokenDeliveries {
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly audit: AuditSink,
    private readonly logger?: Logger,
  ) {}

  /** Runs `send` for `target`; resolves with the outcome once it is audited, and never rejects. */
  deliver(target: LogoutTarget, facts: DeliveryFacts, send: () => Promise<void>): Promise<DeliveryOutcome> {
    return this.track(
      send().then(
        () => this.#record(target, facts),
        (error: unknown) => this.#record(target, facts, failureReason(error)),
      ),
    );
  }

  /** Keeps `work` among the deliveries under way until it settles. */
  track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight.add(work);
    const done = () => this.#inFlight.delete(work);
    work.then(done, done);
    return work;
  }

  /** Resolves once every delivery started so far (and any it started in turn) has its outcome. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #record(target: LogoutTarget, facts: DeliveryFacts, reason?: string): DeliveryOutcome {
    const { trigger, by, ...request } = facts;
    this.audit.record({
      type: 'backchannel_logout',
      outcome: reason ? 'failure' : 'success',
      clientId: target.clientId,
      accountId: target.sub,
      ...request,
      detail: { trigger, ...(by ? { by } : {}), ...(target.sid ? { sid: target.sid } : {}), ...(reason ? { reason } : {}) },
    });
    if (reason) {
      this.logger?.warn({ clientId: target.clientId, trigger, reason, requestId: facts.requestId }, 'back-channel logout failed: the client was not told that the session ended');
    }
    return { clientId: target.clientId, ok: !reason, reason };
  }
}

/** Why a delivery failed, in words an operator can act on. */
function failureReason(error: unknown): string {
  const { name, message, cause } = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (name === 'TimeoutError') return 'no answer within 2.5 s';
  if (cause && (cause.code || cause.message)) {
    const detail = cause.code && cause.message ? `${cause.code}: ${cause.message}` : (cause.code ?? cause.message);
    // oidc-provider's SSRF guard (src/oidc/outbound-fetch.ts).
    const hint = /special-use IP/.test(String(cause.message)) ? ' (ALLOW_PRIVATE_NETWORK_CALLS=true lets the server call private addresses)' : '';
    return `could not reach the client: ${detail}${hint}`;
  }
  return message ?? String(error);
}

/**
 * oidc-provider's logout waits for every relying party before it redirects the browser; here its call only starts
 * the delivery, so the user's logout never waits on a relying party.
 */
export function deliverInBackground(provider: Provider, deliveries: LogoutTokenDeliveries): void {
  const prototype = provider.Client.prototype as unknown as WithSender;
  if (librarySenders.has(prototype)) return;
  const send = prototype.backchannelLogout;
  librarySenders.set(prototype, send);
  prototype.backchannelLogout = function backchannelLogout(sub, sid) {
    const ctx = Provider.ctx;
    const facts: DeliveryFacts = { trigger: 'logout', ...(ctx ? requestFacts(ctx) : {}) };
    void deliveries.deliver({ clientId: this.clientId, sub, sid }, facts, () => send.call(this, sub, sid));
    return Promise.resolve();
  };
}

export interface NotifierDependencies {
  catalog: Catalog;
  /** The Provider that signs; asked for only when a client of the ended sessions registered a URI. */
  provider: () => Provider | Promise<Provider>;
  deliveries: LogoutTokenDeliveries;
  /** Who ends the sessions (`cli`, `admin-api`). */
  actor: string;
  logger?: Logger;
}

/**
 * Sends logout tokens for sessions an administrator ended (src/accounts/sessions.ts). As a listener it only starts
 * them: the administrator's request does not wait on relying parties (the CLI, which must, awaits `notify`).
 */
export class BackchannelLogoutNotifier implements SessionEndListener {
  constructor(private readonly deps: NotifierDependencies) {}

  async sessionsEnded(sessions: EndedSession[]): Promise<void> {
    void this.notify(sessions);
  }

  /** Resolves with each delivery's outcome (none when no client of the sessions registered a URI); never rejects. */
  notify(sessions: EndedSession[]): Promise<DeliveryOutcome[]> {
    return this.deps.deliveries.track(this.#notify(sessions));
  }

  async #notify(sessions: EndedSession[]): Promise<DeliveryOutcome[]> {
    let targets: LogoutTarget[];
    try {
      targets = await this.#targets(sessions);
    } catch (error) {
      this.deps.logger?.error({ err: error }, 'back-channel logout not sent: the clients of the ended sessions could not be read');
      return [];
    }
    if (targets.length === 0) return [];
    const provider = Promise.resolve().then(this.deps.provider);
    const facts: DeliveryFacts = { trigger: 'session_ended', by: this.deps.actor };
    return Promise.all(
      targets.map((target) =>
        this.deps.deliveries.deliver(target, facts, async () => {
          const client = await (await provider).Client.find(target.clientId);
          if (!client) throw new Error('the client was disabled or removed meanwhile');
          await sendLogoutToken(client, target.sub, target.sid);
        }),
      ),
    );
  }

  /** The clients of the sessions that registered a back-channel logout URI (disabled clients are not told). */
  async #targets(sessions: EndedSession[]): Promise<LogoutTarget[]> {
    const targets: LogoutTarget[] = [];
    for (const session of sessions) {
      for (const { clientId, sid } of session.clients) {
        if ((await this.deps.catalog.client(clientId))?.backchannelLogoutUri) targets.push({ clientId, sub: session.accountId, sid });
      }
    }
    return targets;
  }
}
