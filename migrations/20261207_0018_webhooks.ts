/**
 * Webhooks (src/webhooks/): audit events are sent to WEBHOOK_URL in the order their transactions committed.
 *
 * - `audit_events.txid`: the id of the transaction that wrote each event (`pg_current_xact_id()`). Ids from the
 *   sequence are taken while transactions are still open, so a reader going by `id` alone could pass over an
 *   event whose transaction commits after a later one's: read in (txid, id) order, and only below the oldest
 *   transaction still open, nothing is ever passed over. The column is added empty (no rewrite of a large table)
 *   and only then given its default; events written before have none and are never sent.
 * - `webhook_endpoints`: per URL, the last event sent (its txid and id) and the retry state after a failure.
 *
 * The index is built concurrently on PostgreSQL, so the audit table keeps taking writes; that cannot run in a
 * transaction, hence `config`. Embedded PGlite has a single connection and builds it in the ordinary way.
 */
import type { Knex } from 'knex';

export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  const postgres = knex.client.config.client === 'pg';
  await knex.raw('alter table audit_events add column if not exists txid xid8');
  await knex.raw('alter table audit_events alter column txid set default pg_current_xact_id()');
  if (postgres) {
    const { rows } = await knex.raw(
      `select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
       where c.relname = 'audit_events_txid' and c.relnamespace = current_schema()::regnamespace and not i.indisvalid`,
    );
    if (rows.length > 0) await knex.raw('drop index concurrently audit_events_txid');
  }
  await knex.raw(`create index ${postgres ? 'concurrently ' : ''}if not exists audit_events_txid on audit_events (txid, id) where txid is not null`);
  await knex.raw(`
    create table if not exists webhook_endpoints (
      url text primary key,
      last_txid xid8 not null,
      last_event_id bigint not null,
      failures integer not null default 0,
      retry_at timestamptz,
      last_error text,
      updated_at timestamptz not null default now()
    )`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
