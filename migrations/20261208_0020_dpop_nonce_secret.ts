/**
 * `dpop_nonce_secret` in server_settings: the key DPoP nonces are derived from (RFC 9449 §8, src/oidc/dpop-nonces.ts).
 * Made here, with the database, so that a nonce one instance hands out is taken by every other behind the load
 * balancer, with nothing for the operator to keep. A nonce is good for a few minutes only, so the key needs no
 * rotation of its own.
 */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex('server_settings').insert({ name: 'dpop_nonce_secret', value: randomBytes(32).toString('base64url') });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
