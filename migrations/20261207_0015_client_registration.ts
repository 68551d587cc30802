/**
 * Dynamic client registration (RFC 7591, with RFC 7592's management; src/client-registration/):
 * - `client_registration_tokens`: initial access tokens an administrator hands out (`authz clients
 *   registration-token`), each good for `uses_left` registrations until `expires_at`. Only the token's SHA-256 is
 *   kept: it is random, so a hash is enough, and a copy of the table lets no one register;
 * - `client_registrations`: the clients that registered themselves, with the SHA-256 of the registration access
 *   token that reads, changes and deletes that client's registration, how it registered (`open`, or the id of
 *   the initial access token used), and the metadata it gave that only describes it (client_uri, logo_uri,
 *   policy_uri, tos_uri, contacts, software_id, software_version), echoed back as registered. Deleted with their
 *   client.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('client_registration_tokens', (t) => {
    t.text('id').primary();
    t.text('token_hash').notNullable().unique();
    t.integer('uses_left').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('client_registrations', (t) => {
    t.text('client_id').primary().references('client_id').inTable('clients').onDelete('CASCADE');
    t.text('token_hash').notNullable().unique();
    t.text('registered_via').notNullable();
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
