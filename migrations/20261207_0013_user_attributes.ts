/**
 * A user's own attributes (`tenant_id`, `department`, …), as Keycloak's user attributes: set by administrators or
 * brought by an import, and released as token claims where USER_CLAIMS names them (src/accounts/attributes.ts).
 * A constant default, so adding it rewrites no row.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table users add column attributes jsonb not null default '{}'::jsonb`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
