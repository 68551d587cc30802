/**
 * Sign-ins from other identity providers (IDENTITY_PROVIDERS_FILE; src/federation/): which account a person's
 * account at an upstream provider signs in to. One row per (provider, subject):
 * - `provider`: the id the deployment gave that provider (`google`, `corp`);
 * - `subject`: the upstream ID token's `sub`, which that provider keeps for the person (never the email, which can
 *   change hands);
 * - `email`: the address the upstream gave at the last sign-in, shown on the account page and to administrators;
 * - `user_id`: our account, one provider's account at most per user and provider.
 * Deleted with their user.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('linked_identities', (t) => {
    t.text('provider').notNullable();
    t.text('subject').notNullable();
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('email');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true });
    t.primary(['provider', 'subject']);
    t.unique(['user_id', 'provider'], { indexName: 'linked_identities_user_provider' });
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
