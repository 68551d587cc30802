/**
 * Links sent by mail (src/accounts/email-links.ts): a password reset, an email confirmation. Only a SHA-256 hash
 * of each link's secret is kept, so a copy of the table opens nothing. In PostgreSQL rather than Redis, beside the
 * users row they change: a link is deleted in the same transaction as the change it makes, so it works once, and
 * a failure leaves both as they were. `email` is the address the link was sent to: a confirmation of an address
 * the user no longer has confirms nothing. Expired rows are pruned (src/store/prune.ts).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('email_links', (t) => {
    t.text('token_hash').primary();
    t.text('purpose').notNullable();
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('email').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['user_id'], 'email_links_user');
    t.index(['expires_at'], 'email_links_expires');
  });
  await knex.raw(`alter table email_links add constraint email_links_purpose check (purpose in ('password_reset', 'email_confirmation'))`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
