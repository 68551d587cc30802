/**
 * The passwords an account had before its current one (PASSWORD_HISTORY, Keycloak's "Not Recently Used" policy;
 * src/accounts/password-history.ts): only their hashes, only as many as the setting needs, and deleted with the
 * account. `id` orders them (newest highest) without trusting clocks.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('password_history', (t) => {
    t.bigIncrements('id');
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('password_hash').notNullable();
    t.timestamp('replaced_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['user_id', 'id'], 'password_history_user');
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
