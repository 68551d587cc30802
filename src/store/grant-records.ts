/**
 * Deleting what a grant or a client left in `oidc_models`, by index on a table of any size: a grant's tokens by
 * (model, grant_id), a client's records by the client index (migrations/20261204_0003_client_records.ts) and its
 * refresh tokens, which that index leaves out, through its grants. Each is one statement, so nothing is left
 * half-deleted and nothing is carried through Node, however many grants a client has.
 *
 * What Redis holds for them (access tokens, codes) is left to expire: oidc-provider refuses a token whose grant
 * is gone, and so do we a token whose client is gone or disabled (src/oidc/provider.ts, introspection).
 */
import type { Knex } from 'knex';
import { TABLE } from './sql-adapter.js';

/**
 * The models oidc-provider binds to a grant (its lib/helpers/revoke.js). Named in the query so that the
 * (model, grant_id) index is used: PostgreSQL before 18 cannot skip its leading column.
 */
export const GRANT_BOUND_MODELS = [
  'AccessToken',
  'RefreshToken',
  'AuthorizationCode',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
] as const;

/** Deletes every token and code issued under the grant `grantId` (the grant's own id, not its storage id). */
export async function deleteGrantBoundRecords(db: Knex, grantId: string): Promise<void> {
  await db(TABLE).whereIn('model', GRANT_BOUND_MODELS).where('grant_id', grantId).delete();
}

/**
 * Deletes the client's grants, every token issued under them and whatever else of the client's is stored here
 * (its one binding: the client id). The first condition is the index's own, so that PostgreSQL sees that the index applies.
 */
export const DELETE_CLIENT_RECORDS = `with client_records as (
    delete from ${TABLE} where model <> 'RefreshToken' and (payload->>'clientId') = ?
    returning model, payload->>'jti' as grant_id
  )
  delete from ${TABLE} where model = 'RefreshToken'
    and grant_id in (select grant_id from client_records where model = 'Grant')`;

export async function deleteClientRecords(db: Knex, clientId: string): Promise<void> {
  await db.raw(DELETE_CLIENT_RECORDS, [clientId]);
}
