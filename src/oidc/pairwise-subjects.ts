/**
 * Pairwise subject identifiers (OpenID Connect Core §8.1): for a `pairwise` client, `sub` is an HMAC-SHA-256 of
 * the account id under the server's pairwise salt (made once with the database, migration 0012), with the client's
 * sector: the same for every client of one sector, different between sectors, and not to be reversed by an app.
 * oidc-provider calls this for ID tokens, userinfo, JWT access tokens, introspection and logout tokens alike.
 */
import { createHmac } from 'node:crypto';
import type { Configuration } from 'oidc-provider';
import type { Database } from '../store/database.js';
import { readServerSetting } from '../store/server-settings.js';

/** The salt the migration made. */
export const readPairwiseSalt = (db: Database): Promise<string> => readServerSetting(db, 'pairwise_salt');

export const pairwiseSubject = (salt: string, sector: string, accountId: string) =>
  createHmac('sha256', salt).update(`${sector}\n${accountId}`).digest('base64url');

/** Users' ids read per batch when a pairwise subject is looked up: keyset pages of the primary key. */
const LOOKUP_BATCH = 10_000;

/**
 * The account whose pairwise subject in `sector` is `subject`, for support ("who is this `sub` of the shop's?"):
 * an HMAC cannot be reversed, so every account's subject is made again (3 s of hashing per million accounts here).
 */
export async function accountOfPairwiseSubject(db: Database, salt: string, sector: string, subject: string): Promise<string | undefined> {
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const ids = (await db('users').where('id', '>', after).orderBy('id').limit(LOOKUP_BATCH).pluck('id')) as string[];
    const found = ids.find((id) => pairwiseSubject(salt, sector, id) === subject);
    if (found || ids.length < LOOKUP_BATCH) return found;
    after = ids[ids.length - 1] as string;
  }
}

/** The account an app knows by `subject`: its pairwise subject, or for a public-subject client the account id itself. */
export function accountOfSubject(db: Database, salt: string, client: { subjectType: string; pairwiseSector: string | null }, subject: string): Promise<string | undefined> {
  if (client.subjectType !== 'pairwise' || !client.pairwiseSector) return Promise.resolve(subject);
  return accountOfPairwiseSubject(db, salt, client.pairwiseSector, subject);
}

/**
 * The provider's `pairwiseIdentifier`. The client's sector is the one fixed when it was registered
 * (src/clients/sector-identifiers.ts, given to the library by ./client-adapter.ts), so that a later change of its
 * redirect URIs changes no user's `sub`.
 */
export function pairwiseIdentifier(salt: string): NonNullable<Configuration['pairwiseIdentifier']> {
  return async (_ctx, accountId, client) => {
    const sector = client.sectorIdentifier;
    if (typeof sector !== 'string' || !sector) throw new Error(`client ${client.clientId} has no sector for its pairwise subjects`);
    return pairwiseSubject(salt, sector, accountId);
  };
}
