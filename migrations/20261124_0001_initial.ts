/**
 * Users, clients and their hashed secrets, APIs (resource servers), and the provider's durable models.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.uuid('id').primary(); // the OpenID `sub`
    t.text('email').notNullable().unique(); // stored lower-cased
    t.text('name');
    t.text('password_hash');
    t.specificType('roles', 'text[]').notNullable().defaultTo('{}');
    t.boolean('email_verified').notNullable().defaultTo(false);
    t.timestamp('disabled_at', { useTz: true });
    t.timestamp('password_changed_at', { useTz: true });
    t.timestamps(true, true);
  });

  await knex.schema.createTable('apis', (t) => {
    t.uuid('id').primary();
    t.text('indicator').notNullable().unique(); // RFC 8707 resource indicator, the tokens' `aud`
    t.text('name').notNullable();
    t.specificType('scopes', 'text[]').notNullable().defaultTo('{}');
    t.integer('access_token_ttl').notNullable();
    t.text('access_token_format').notNullable().defaultTo('jwt');
    t.boolean('is_default').notNullable().defaultTo(false);
    t.timestamps(true, true);
  });
  await knex.raw(`alter table apis add constraint apis_format_check check (access_token_format in ('jwt', 'opaque'))`);
  await knex.raw('create unique index apis_one_default on apis (is_default) where is_default');

  await knex.schema.createTable('clients', (t) => {
    t.text('client_id').primary();
    t.text('name').notNullable();
    t.text('type').notNullable(); // web | spa | service
    t.specificType('redirect_uris', 'text[]').notNullable().defaultTo('{}');
    t.specificType('post_logout_redirect_uris', 'text[]').notNullable().defaultTo('{}');
    t.specificType('grant_types', 'text[]').notNullable();
    t.text('token_endpoint_auth_method').notNullable();
    t.text('scope').notNullable(); // space-separated scopes the client may ask for
    t.specificType('roles', 'text[]').notNullable().defaultTo('{}'); // roles of its own (service accounts)
    t.boolean('first_party').notNullable().defaultTo(false); // first-party clients skip consent
    t.jsonb('metadata').notNullable().defaultTo('{}'); // further OIDC client metadata, e.g. jwks for private_key_jwt
    t.timestamp('disabled_at', { useTz: true });
    t.timestamps(true, true);
  });
  await knex.raw(`alter table clients add constraint clients_type_check check (type in ('web', 'spa', 'service'))`);

  await knex.schema.createTable('client_secrets', (t) => {
    t.uuid('id').primary();
    t.text('client_id').notNullable().references('client_id').inTable('clients').onDelete('CASCADE');
    t.text('pepper_kid').notNullable(); // which pepper keyed the hash
    t.text('hash').notNullable(); // base64url HMAC-SHA-256(pepper, secret); the secret itself is never stored
    t.timestamp('expires_at', { useTz: true }); // set on the old secret during a rollover
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['client_id']);
  });

  // oidc-provider's models kept in SQL: always Grant and RefreshToken, and every short-lived model when there is
  // no Redis. One row per (model, id); the columns beside the payload exist only to be indexed.
  await knex.schema.createTable('oidc_models', (t) => {
    t.text('model').notNullable();
    t.text('id').notNullable();
    t.jsonb('payload').notNullable();
    t.text('grant_id');
    t.text('uid');
    t.text('user_code');
    t.text('account_id');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('consumed_at', { useTz: true });
    t.primary(['model', 'id']);
  });
  await knex.raw('create index oidc_models_grant_id on oidc_models (model, grant_id) where grant_id is not null');
  await knex.raw('create index oidc_models_uid on oidc_models (model, uid) where uid is not null');
  await knex.raw('create index oidc_models_user_code on oidc_models (model, user_code) where user_code is not null');
  await knex.raw('create index oidc_models_account_id on oidc_models (account_id) where account_id is not null');
  await knex.raw('create index oidc_models_expires_at on oidc_models (expires_at) where expires_at is not null');
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
