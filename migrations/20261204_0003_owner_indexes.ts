/**
 * Finds a client's and a user's records in `oidc_models` by index, for deleting a client, revoking a user's
 * sessions and grants, and listing them (src/store/grant-records.ts). Refresh tokens are left out of both
 * indexes: they are found through their grant, which the `grant_id` index covers, and the most frequent insert
 * of all (every rotation) then maintains one random index fewer. The account index replaces
 * `oidc_models_account_id`, which held every refresh token as well.
 *
 * Built concurrently on PostgreSQL, so a large table keeps taking writes while they build; that cannot run in a
 * transaction, hence `config`. Embedded PGlite has a single connection and builds them in the ordinary way.
 */
import type { Knex } from 'knex';

export const config = { transaction: false };

const INDEXES = {
  oidc_models_by_client: `on oidc_models ((payload->>'clientId')) where model <> 'RefreshToken'`,
  oidc_models_by_account: `on oidc_models (account_id) where account_id is not null and model <> 'RefreshToken'`,
};
const REPLACED = 'oidc_models_account_id';

export async function up(knex: Knex): Promise<void> {
  const postgres = knex.client.config.client === 'pg';
  for (const [name, definition] of Object.entries(INDEXES)) {
    if (postgres) await dropIfInvalid(knex, name);
    await knex.raw(`create index ${postgres ? 'concurrently ' : ''}if not exists ${name} ${definition}`);
  }
  await knex.raw(`drop index ${postgres ? 'concurrently ' : ''}if exists ${REPLACED}`);
}

/** A concurrent build that was interrupted leaves an invalid index under its name: drop it, to build it afresh. */
async function dropIfInvalid(knex: Knex, name: string): Promise<void> {
  const { rows } = await knex.raw(
    `select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
     where c.relname = ? and c.relnamespace = current_schema()::regnamespace and not i.indisvalid`,
    [name],
  );
  if (rows.length > 0) await knex.raw('drop index concurrently ??', [name]);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
