/**
 * Apps that registered themselves (RFC 7591) and were then abandoned: an MCP client tried once, a developer's
 * experiment. With CLIENT_REGISTRATION_UNUSED_TTL, one that got no token for that long is removed with its
 * grants, as an administrator's `clients remove` would, and audited `client_removed` with the reason. Clients an
 * administrator registered are never touched: only `client_registrations` rows are read.
 *
 * Use is recorded when the token endpoint answers the client (oidc-provider's `grant.success`), at most once an
 * hour per client and process, off the request path.
 */
import { LRUCache } from 'lru-cache';
import type { ClientRepository } from '../clients/clients.js';
import { NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Database } from '../store/database.js';

/** A process records a client's use at most this often: the TTL is days, so an hour's precision is plenty. */
const NOTE_EVERY_MS = 3_600_000;
/** Clients removed per run, so that one run stays short; the next run takes the rest. */
const REMOVALS_PER_RUN = 100;

export class RegistrationUse {
  readonly #noted = new LRUCache<string, true>({ max: 10_000, ttl: NOTE_EVERY_MS });

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
  ) {}

  /** Records that `clientId` got a token now; for a client that did not register itself it changes no row. */
  note(clientId: string): void {
    if (this.#noted.has(clientId)) return;
    this.#noted.set(clientId, true);
    this.db('client_registrations')
      .where({ client_id: clientId })
      .update({ last_used_at: this.db.fn.now() })
      .catch((error: unknown) => {
        // Tried again at its next token: a store that is down now loses nothing that matters in days.
        this.#noted.delete(clientId);
        this.logger.warn({ err: error, clientId }, 'could not record the use of a registered app');
      });
  }
}

/**
 * Removes up to REMOVALS_PER_RUN apps that registered themselves and got no token (or, never used, were
 * registered) more than `unusedSeconds` ago. Returns the client ids removed. Another instance removing the same
 * app at the same moment is no error: the app is gone either way.
 */
export async function removeUnusedRegistrations(db: Database, clients: ClientRepository, unusedSeconds: number): Promise<string[]> {
  const rows: { client_id: string }[] = await db('client_registrations')
    .select('client_id')
    .whereRaw(`coalesce(last_used_at, created_at) < now() - ? * interval '1 second'`, [unusedSeconds])
    .orderBy('created_at')
    .limit(REMOVALS_PER_RUN);
  const removed: string[] = [];
  for (const { client_id: clientId } of rows) {
    try {
      await clients.remove(clientId, { reason: 'unused', unusedSeconds });
      removed.push(clientId);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
  }
  return removed;
}
