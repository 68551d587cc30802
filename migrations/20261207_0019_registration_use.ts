/**
 * When an app that registered itself last got a token (`client_registrations.last_used_at`), so that one unused
 * for CLIENT_REGISTRATION_UNUSED_TTL can be removed (src/client-registration/unused-registrations.ts). Apps
 * registered before this migration count as used now: their earlier use was not recorded, and an upgrade must
 * not remove an app in use.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('client_registrations', (t) => {
    t.timestamp('last_used_at', { useTz: true });
  });
  await knex('client_registrations').update({ last_used_at: knex.fn.now() });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
