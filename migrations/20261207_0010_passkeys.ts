/**
 * Passkeys (WebAuthn credentials): src/accounts/passkeys.ts. One row per credential a user registered:
 * - `credential_id`: the authenticator's id for it (base64url), unique across users, as WebAuthn requires;
 * - `public_key`: its COSE public key, which verifies each sign-in's signature (nothing secret is stored);
 * - `sign_count`: the authenticator's signature counter, where it keeps one (0 for most synced passkeys), so
 *   that a cloned authenticator shows as a counter that went back;
 * - `backed_up`: whether the authenticator says the credential is synced (a passkey in a password manager or
 *   platform keychain) rather than bound to one device;
 * - `transports` and `aaguid`: what the browser and authenticator said of themselves, shown and passed back to
 *   browsers as hints.
 * Deleted with their user.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('passkeys', (t) => {
    t.text('credential_id').primary();
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('name').notNullable();
    t.binary('public_key').notNullable();
    t.bigInteger('sign_count').notNullable().defaultTo(0);
    t.boolean('backed_up').notNullable().defaultTo(false);
    t.specificType('transports', 'text[]').notNullable().defaultTo('{}');
    t.text('aaguid');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true });
    t.index(['user_id'], 'passkeys_user');
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
