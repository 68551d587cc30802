/**
 * Terms of service (TERMS_URL and TERMS_VERSION, Keycloak's "Terms and Conditions" required action;
 * src/oidc/terms-prompt.ts): which version of the terms the user accepted, and when. Null until they have; a new
 * TERMS_VERSION asks everyone again. Nullable columns without a default, so adding them rewrites no row.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table users add column terms_accepted_version text, add column terms_accepted_at timestamptz');
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
