/**
 * Groups (Keycloak's groups): a named set of roles that users belong to (`users.groups`), so that a role is given
 * to a team at once and a person's roles follow the teams they join and leave (src/accounts/groups.ts). Members are
 * named on the users row, as roles are, so that a token request reads the user and nothing more; the GIN index
 * answers "who is in this group". Apps registered with the default scopes may ask for the new `groups` scope, as
 * apps registered from now on may.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('groups', (t) => {
    t.text('name').primary();
    t.text('description');
    t.specificType('roles', 'text[]').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.alterTable('users', (t) => {
    t.specificType('groups', 'text[]').notNullable().defaultTo('{}');
  });
  await knex.raw('create index users_groups on users using gin (groups)');
  await knex('clients').where({ scope: 'openid offline_access profile email roles' }).update({ scope: 'openid offline_access profile email roles groups' });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
