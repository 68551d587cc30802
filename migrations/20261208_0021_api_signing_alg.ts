/**
 * `apis.signing_alg`: what signs an API's JWT access tokens (RFC 9068). RS256, what every API registered before
 * this migration got, unless the API is registered for PS256, ES256 or EdDSA (src/apis/apis.ts).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('apis', (t) => {
    t.text('signing_alg').notNullable().defaultTo('RS256');
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
