/**
 * A user's login sessions (one per browser), as the admin API and the CLI list and end them. Sessions live where
 * the provider keeps them (Redis, or SQL without it), indexed by account; ending one signs that browser out
 * (its consents and tokens stay: revoke-sessions or revoke-grant end those), and the clients used in it are told
 * through the listener (back-channel logout: src/oidc/backchannel-logout.ts).
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { AuditSink } from '../audit/audit-log.js';
import { NotFoundError } from '../errors.js';

export interface UserSession {
  /** The session's public identifier (not the cookie value). */
  uid: string;
  signedInAt: Date | null;
  expiresAt: Date | null;
  /** The user ticked "Keep me signed in" (or LOGIN_REMEMBER_ME=always): the browser keeps the cookie until expiresAt. */
  remembered: boolean;
  /** Clients the user used in this session. */
  clients: string[];
  amr: string[];
}

/** A session that was just ended: whose it was, and each client used in it with the `sid` that client was given. */
export interface EndedSession {
  accountId: string;
  uid: string;
  clients: { clientId: string; sid?: string }[];
}

/** Told once sessions are gone. Never throws: the sessions ended whatever it does. */
export interface SessionEndListener {
  sessionsEnded(sessions: EndedSession[]): Promise<void>;
}

/** The Session adapter, with the account lookup both of ours offer. */
export type SessionStore = Adapter & { findByAccount(accountId: string): Promise<AdapterPayload[]> };

const toDate = (seconds: unknown) => (typeof seconds === 'number' ? new Date(seconds * 1000) : null);

/** The provider's per-client record in a session: `{ [clientId]: { sid, grantId, … } }`. */
const authorizationsOf = (session: AdapterPayload) => (session.authorizations as Record<string, { sid?: unknown }> | undefined) ?? {};

function ended(session: AdapterPayload & { accountId: string }): EndedSession {
  return {
    accountId: session.accountId,
    uid: String(session.uid),
    clients: Object.entries(authorizationsOf(session)).map(([clientId, { sid }]) => ({ clientId, sid: typeof sid === 'string' ? sid : undefined })),
  };
}

export class SessionDirectory {
  constructor(
    readonly store: SessionStore,
    /** Where ended sessions are recorded, and who ends them (`cli`, `admin-api`), as the repositories do. */
    private readonly options: { audit?: AuditSink; actor?: string; listener?: SessionEndListener } = {},
  ) {}

  async list(accountId: string): Promise<UserSession[]> {
    const sessions = await this.store.findByAccount(accountId);
    return sessions
      .filter((session) => session.accountId === accountId && typeof session.uid === 'string')
      .map((session) => ({
        uid: session.uid as string,
        signedInAt: toDate(session.loginTs),
        expiresAt: toDate(session.exp),
        remembered: session.transient !== true,
        clients: Object.keys(authorizationsOf(session)),
        amr: Array.isArray(session.amr) ? (session.amr as string[]) : [],
      }))
      .sort((a, b) => (b.signedInAt?.getTime() ?? 0) - (a.signedInAt?.getTime() ?? 0));
  }

  /** Removes every session of the user, without an audit event each (the caller records why). */
  async endAll(accountId: string): Promise<void> {
    const sessions = (await this.store.findByAccount(accountId)).filter(
      (session): session is AdapterPayload & { accountId: string; jti: string } => session.accountId === accountId && typeof session.jti === 'string',
    );
    await Promise.all(sessions.map((session) => this.store.destroy(session.jti)));
    if (sessions.length > 0) await this.options.listener?.sessionsEnded(sessions.map(ended));
  }

  /** Ends one session of the user; the browser holding it must sign in again. */
  async end(accountId: string, uid: string): Promise<void> {
    const session = await this.store.findByUid(uid);
    if (!session || session.accountId !== accountId || typeof session.jti !== 'string') {
      throw new NotFoundError(`no session ${uid} of user ${accountId}`);
    }
    await this.store.destroy(session.jti);
    this.options.audit?.record({
      type: 'user_session_ended',
      outcome: 'success',
      accountId,
      detail: { by: this.options.actor ?? 'server', sessionUid: uid },
    });
    await this.options.listener?.sessionsEnded([ended({ ...session, accountId })]);
  }
}
