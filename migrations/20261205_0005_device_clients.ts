/**
 * Admits the `device` client type: apps on input-constrained devices and command-line tools, which sign their
 * user in with the device authorization grant (RFC 8628) on another screen.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table clients drop constraint clients_type_check');
  await knex.raw(`alter table clients add constraint clients_type_check check (type in ('web', 'spa', 'service', 'device'))`);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
