/**
 * The audit log, brute-force counters, and the per-user moment before which every session and token is void ("log out everywhere").
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('type').notNullable(); // e.g. sign_in, token_issued, refresh_reuse_detected, client_created
    t.text('outcome').notNullable(); // success | failure
    t.text('account_id');
    t.text('client_id');
    t.text('ip');
    t.text('user_agent');
    t.text('request_id');
    t.jsonb('detail').notNullable().defaultTo('{}'); // never secrets or tokens
    t.index(['at']);
    t.index(['type', 'at']);
  });
  await knex.raw('create index audit_events_account on audit_events (account_id, at) where account_id is not null');
  await knex.raw('create index audit_events_client on audit_events (client_id, at) where client_id is not null');

  // Brute-force counters when there is no Redis (rate-limiter-flexible's Postgres layout).
  await knex.schema.createTable('rate_limits', (t) => {
    t.string('key', 255).primary();
    t.integer('points').notNullable().defaultTo(0);
    t.bigInteger('expire');
  });

  await knex.schema.alterTable('users', (t) => {
    // Sessions and tokens issued before this moment are void (set by revoke-sessions, password change, disable).
    t.timestamp('sessions_revoked_at', { useTz: true });
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
