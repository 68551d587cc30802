/**
 * Pairwise subject identifiers (OpenID Connect Core §8.1): for a `pairwise` client, `sub` is an HMAC-SHA-256 of
 * the account id under the server's pairwise salt (made once with the database, migration 0012), with the client's
 * sector: the same for every client of one sector, different between sectors, and not to be reversed by an app.
 * oidc-provider calls this for ID tokens, userinfo, JWT access tokens, introspection and logout tokens alike.
 */
import { createHmac } from 'node:crypto';
import type { Configuration } from 'oidc-provider';
import type { Database } from '../store/database.js';

/** The salt the migration made. */
export async function readPairwiseSalt(db: Database): Promise<string> {
  const row = await db('server_settings').where({ name: 'pairwise_salt' }).first('value');
  if (!row) throw new Error('server_settings has no pairwise_salt: the database was not migrated');
  return row.value as string;
}

export const pairwiseSubject = (salt: string, sector: string, accountId: string) =>
  createHmac('sha256', salt).update(`${sector}\n${accountId}`).digest('base64url');

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
