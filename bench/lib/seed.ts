/**
 * What the scenarios need, created through the server's own repositories, and bulk rows made in SQL
 * (`INSERT … SELECT generate_series`) by cloning one real row of each kind.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Services } from '../../src/services.js';
import { storageId } from '../../src/store/storage-id.js';

export const PASSWORD = 'bench password 0123';
export const JWT_API = 'https://api.bench.test';
export const OPAQUE_API = 'https://opaque.bench.test';
export const REDIRECT_URI = 'https://app.bench.test/callback';
export const userEmail = (index: number) => `u${index}@bench.test`;

export interface Fixtures {
  service: { clientId: string; secret: string };
  web: { clientId: string; secret: string; redirectUri: string };
}

export async function createFixtures(services: Services): Promise<Fixtures> {
  await services.apis.create({ indicator: JWT_API, name: 'Bench API', scopes: ['read', 'write'], isDefault: true, accessTokenTtl: 600 });
  await services.apis.create({ indicator: OPAQUE_API, name: 'Bench opaque API', scopes: ['legacy'], accessTokenFormat: 'opaque' });
  const service = await services.clients.create({ type: 'service', name: 'Bench service', clientId: 'bench-service' });
  const web = await services.clients.create({
    type: 'web',
    name: 'Bench web app',
    clientId: 'bench-web',
    redirectUris: [REDIRECT_URI],
    firstParty: true,
  });
  // One real bcrypt hash at the configured cost; bulk users share it.
  await services.users.create({ email: userEmail(0), name: 'Bench user 0', password: PASSWORD });
  return {
    service: { clientId: service.client.clientId, secret: service.secret! },
    web: { clientId: web.client.clientId, secret: web.secret!, redirectUri: REDIRECT_URI },
  };
}

/** Users u<from>…u<to>@bench.test, all with user 0's password hash. */
export async function bulkUsers(db: Knex, from: number, to: number): Promise<void> {
  if (to < from) return;
  await db.raw(
    `insert into users (id, email, name, password_hash, roles, email_verified, password_changed_at)
     select gen_random_uuid(), 'u' || g || '@bench.test', 'Bench user ' || g, t.password_hash, '{}', true, now()
     from generate_series(?::int, ?::int) g, (select password_hash from users where email = ?) t`,
    [from, to, userEmail(0)],
  );
}

/** Service clients bench-c<from>…<to> with the bench service client's secret hash. */
export async function bulkClients(db: Knex, from: number, to: number): Promise<void> {
  if (to < from) return;
  await db.raw(
    `insert into clients (client_id, name, type, grant_types, token_endpoint_auth_method, scope)
     select 'bench-c' || g, 'Bench client ' || g, 'service', '{client_credentials}', 'client_secret_basic', ''
     from generate_series(?::int, ?::int) g`,
    [from, to],
  );
  await db.raw(
    `insert into client_secrets (id, client_id, pepper_kid, hash)
     select gen_random_uuid(), 'bench-c' || g, s.pepper_kid, s.hash
     from generate_series(?::int, ?::int) g, (select pepper_kid, hash from client_secrets where client_id = 'bench-service') s`,
    [from, to],
  );
}

/** SQL for what src/store/storage-id.ts does: records are stored under base64url(SHA-256(id)). */
const storageIdSql = (expression: string) =>
  `rtrim(translate(encode(sha256(convert_to(${expression}, 'UTF8')), 'base64'), '+/', '-_'), '=')`;

/**
 * Clones a real (Grant, RefreshToken) pair: grants <prefix>g<i> and refresh tokens <prefix>r<i> for i in
 * from…to, each token in its own grant (so a reuse-revocation touches one pair). Token i's value is
 * `clonedToken(prefix, i)`. Rows are keyed as the adapters key them (storageId).
 */
export async function cloneGrants(db: Knex, prefix: string, from: number, to: number, refreshToken: string): Promise<void> {
  if (to < from) return;
  const template = await db('oidc_models').where({ model: 'RefreshToken', id: storageId(refreshToken) }).first('grant_id');
  if (!template?.grant_id) throw new Error('template refresh token not found (has the storage id scheme changed?)');
  const grant = await db('oidc_models').where({ model: 'Grant', id: storageId(template.grant_id) }).first('id');
  if (!grant) throw new Error('template grant not found (has the storage id scheme changed?)');
  const value = (kind: 'g' | 'r') => `('${prefix}${kind}' || lpad(g::text, 10, '0') || substr(md5(g::text), 1, 16))`;
  await db.raw(
    `insert into oidc_models (model, id, payload, grant_id, uid, user_code, account_id, expires_at)
     select 'Grant', ${storageIdSql(value('g'))}, payload || jsonb_build_object('jti', ${value('g')}), null, null, null, account_id, expires_at
     from generate_series(?::int, ?::int) g, (select * from oidc_models where model = 'Grant' and id = ?) t`,
    [from, to, grant.id],
  );
  await db.raw(
    `insert into oidc_models (model, id, payload, grant_id, uid, user_code, account_id, expires_at)
     select 'RefreshToken', ${storageIdSql(value('r'))}, (payload - 'jti') || jsonb_build_object('grantId', ${value('g')}),
            ${value('g')}, null, null, account_id, expires_at
     from generate_series(?::int, ?::int) g, (select * from oidc_models where model = 'RefreshToken' and id = ?) t`,
    [from, to, storageId(refreshToken)],
  );
}

const md5Prefix = (index: number) => createHash('md5').update(String(index)).digest('hex').slice(0, 16);

export const clonedToken = (prefix: string, index: number) =>
  `${prefix}r${String(index).padStart(10, '0')}${md5Prefix(index)}`;

