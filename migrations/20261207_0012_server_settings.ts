/**
 * Values the server makes once and keeps for as long as its database: `pairwise_salt`, the key of every pairwise
 * subject identifier (src/oidc/pairwise-subjects.ts). Made here, with the database, so that every instance reads
 * the same one and no operator has to keep it: a new salt would change every pairwise `sub`, which is why it never
 * rotates (as Hydra's `subject_identifiers.pairwise.salt`).
 */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('server_settings', (table) => {
    table.text('name').primary();
    table.text('value').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex('server_settings').insert({ name: 'pairwise_salt', value: randomBytes(32).toString('base64url') });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
