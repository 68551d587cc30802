/**
 * Finds a client's records in `oidc_models` by an index rather than by reading the whole table, for deleting a
 * client (src/store/grant-records.ts). Refresh tokens are left out of it: they are found through their grant,
 * which the `grant_id` index already covers, and the most frequent insert of all does not pay for one more index.
 *
 * Built concurrently on PostgreSQL, so a large table keeps taking writes while it builds; that cannot run in a
 * transaction, hence `config`. Embedded PGlite has a single connection and builds it in the ordinary way.
 */
import type { Knex } from 'knex';

export const config = { transaction: false };

const INDEX = `oidc_models_client_id on oidc_models ((payload->>'clientId')) where model <> 'RefreshToken'`;

export async function up(knex: Knex): Promise<void> {
  if (knex.client.config.client !== 'pg') {
    await knex.raw(`create index if not exists ${INDEX}`);
    return;
  }
  // An earlier build that was interrupted leaves an invalid index behind under the same name: build it afresh.
  await knex.raw(
    `do $$ begin
       if exists (select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
                  where c.relname = 'oidc_models_client_id' and c.relnamespace = current_schema()::regnamespace
                    and not i.indisvalid)
       then drop index oidc_models_client_id; end if;
     end $$`,
  );
  await knex.raw(`create index concurrently if not exists ${INDEX}`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
