/**
 * A password an administrator set as temporary (Keycloak's "Temporary" switch, its "Update Password" required
 * action): `password_change_required` holds the user at "Choose a new password" at their next sign-in, until they
 * have (src/interaction/password-change.ts). A constant default, so adding it rewrites no row.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table users add column password_change_required boolean not null default false');
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
