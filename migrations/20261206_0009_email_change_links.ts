/**
 * A third kind of link sent by mail: confirming a new address before it replaces the account's (the account
 * page's "Change address"). The link is mailed to the new address, which its `email` column holds.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table email_links
    drop constraint email_links_purpose,
    add constraint email_links_purpose check (purpose in ('password_reset', 'email_confirmation', 'email_change'))`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
