/**
 * Deleting what a grant, a client or a user left in `oidc_models`, by index on a table of any size: a grant's
 * tokens by (model, grant_id); a client's or a user's records by their own index
 * (migrations/20261204_0003_owner_indexes.ts), and their refresh tokens, which those indexes leave out, through
 * their grants. Each is one statement, so nothing is left half-deleted and nothing is carried through Node,
 * however many grants there are. A refresh token whose grant is already gone is refused by the provider anyway,
 * and pruned when it expires.
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
 * Deletes the records that `owner` selects (with one binding), then the refresh tokens of the grants among them.
 * `model <> 'RefreshToken'` is the owner indexes' own condition, so that PostgreSQL sees that they apply.
 */
const deleteOwned = (owner: string) => `with owned as (
    delete from ${TABLE} where model <> 'RefreshToken' and ${owner}
    returning model, payload->>'jti' as grant_id
  )
  delete from ${TABLE} where model = 'RefreshToken'
    and grant_id in (select grant_id from owned where model = 'Grant')`;

/** A client's grants, what was issued under them, and whatever else of the client's is stored here. */
export const DELETE_CLIENT_RECORDS = deleteOwned(`(payload->>'clientId') = ?`);

/** A user's grants, what was issued under them, and their sessions when they are kept here. */
export const DELETE_ACCOUNT_RECORDS = deleteOwned('account_id = ?');

export async function deleteClientRecords(db: Knex, clientId: string): Promise<void> {
  await db.raw(DELETE_CLIENT_RECORDS, [clientId]);
}

export async function deleteAccountRecords(db: Knex, accountId: string): Promise<void> {
  await db.raw(DELETE_ACCOUNT_RECORDS, [accountId]);
}
