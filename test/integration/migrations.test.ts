/**
 * Migrations as an operator meets them: every index the request path and the admin operations rely on is there
 * and valid after `migrate`; an instance waits for another's migration rather than fail; and a concurrent index
 * build that was interrupted (which leaves an invalid index behind on PostgreSQL) is built afresh by the next
 * `migrate` instead of being taken as done.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger.js';
import { closeDatabase, migrate, openDatabase } from '../../src/store/database.js';
import { RefreshTokenAdapter } from '../../src/store/refresh-token-adapter.js';
import { storageId } from '../../src/store/storage-id.js';
import { type TestDatabase, createTestDatabase, sqlKinds } from '../support/environment.js';

const OWNER_INDEXES = ['oidc_models_by_client', 'oidc_models_by_account'];
const INTERRUPTED = 'oidc_models_by_client';
const OWNER_MIGRATION = '20261204_0003_owner_indexes';

describe.each(sqlKinds)('migrations on %s', (kind) => {
  let store: TestDatabase;
  beforeAll(async () => {
    store = await createTestDatabase(kind);
  });
  afterAll(() => store.drop());

  /** The indexes of oidc_models in the current schema, each with whether PostgreSQL may use it. */
  async function indexes(): Promise<Record<string, boolean>> {
    const result = await store.db.raw(
      `select c.relname as name, i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
       where i.indrelid = 'oidc_models'::regclass`,
    );
    return Object.fromEntries(result.rows.map((row: { name: string; valid: boolean }) => [row.name, row.valid]));
  }

  test('the owner indexes are built and valid, and the account index they replace is gone', async () => {
    const built = await indexes();
    for (const name of OWNER_INDEXES) expect(built[name]).toBe(true);
    expect(built).not.toHaveProperty('oidc_models_account_id');
  });

  test('consuming a refresh token rewrites it on its own page, touching no index (a HOT update)', async () => {
    const tokens = new RefreshTokenAdapter(store.db, { graceSeconds: 0 });
    const now = Math.floor(Date.now() / 1000);
    // Enough rows to fill several pages, shaped as the provider writes them, and written as rotations write them:
    // one by one.
    const ids = Array.from({ length: 60 }, () => randomUUID());
    for (const id of ids) {
      const payload: AdapterPayload = {
        jti: id,
        kind: 'RefreshToken',
        iat: now,
        exp: now + 3600,
        iiat: now,
        rotations: 0,
        gty: 'authorization_code',
        clientId: 'web-app-client',
        accountId: randomUUID(),
        grantId: randomBytes(32).toString('base64url'),
        sessionUid: randomBytes(32).toString('base64url'),
        sid: randomUUID(),
        nonce: randomBytes(32).toString('base64url'),
        authTime: now,
        amr: ['pwd'],
        scope: 'openid email profile offline_access',
        claims: { id_token: { email: null, email_verified: null }, userinfo: { name: null, picture: null } },
        resource: ['https://api.example.test'],
      };
      await tokens.upsert(id, payload, 3600);
    }
    const pageOf = async (id: string) => {
      const { rows } = await store.db.raw(`select (ctid::text::point)[0] as page from oidc_models where model = 'RefreshToken' and id = ?`, [storageId(id)]);
      return Number(rows[0].page);
    };
    const before = await Promise.all(ids.map(pageOf));
    const lastPage = Math.max(...before);
    expect(lastPage).toBeGreaterThan(3);
    // One token on each page filled so far: the room kept on a page is for the next version of a row or two
    // (what a consume leaves dead is reclaimed later, by pruning), and the last page is not full yet.
    const firsts = before.flatMap((page, index) => (page !== before[index - 1] && page !== lastPage ? [index] : []));
    for (const index of firsts) await tokens.consume(ids[index] as string);
    // A version on another page would need a new entry in every index of the table.
    expect(await Promise.all(firsts.map((index) => pageOf(ids[index] as string)))).toEqual(firsts.map((index) => before[index]));
  });

  test('an instance waits while another one holds the migration lock, then migrates, without a warning', async () => {
    await store.db('knex_migrations').where({ name: OWNER_MIGRATION }).delete();
    await store.db('knex_migrations_lock').update({ is_locked: 1 }); // another instance, migrating
    // The waiting instance's own handle and log (PGlite in memory has one handle: it waits on the test's).
    const lines: { level: number; reason?: string }[] = [];
    const logger = createLogger('debug', true, new Writable({ write: (chunk, _encoding, done) => done(void lines.push(JSON.parse(String(chunk)))) }));
    const instance = kind === 'postgres' ? await openDatabase(store.options, logger) : store.db;
    let settled = false;
    const waiting = migrate(instance).finally(() => {
      settled = true;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(settled).toBe(false);
    } finally {
      await store.db('knex_migrations_lock').update({ is_locked: 0 }); // the other instance is done
    }
    expect(await waiting).toEqual([OWNER_MIGRATION]);
    if (instance !== store.db) await closeDatabase(instance);
    // knex's "release the lock with knex migrate:unlock" would break the other instance's live migration.
    if (kind === 'postgres') {
      expect(lines.filter((line) => /migrations/.test(line.reason ?? '')).map((line) => line.level)).toEqual(expect.arrayContaining([20]));
      expect(lines.filter((line) => line.level >= 40)).toEqual([]);
    }
  });

  // Concurrent builds are PostgreSQL's; PGlite builds its indexes plainly, so it has no such state to recover.
  if (kind === 'postgres') {
    test('an interrupted concurrent build is dropped and built again', async () => {
      // What a build killed half-way leaves: the index in the catalog, marked invalid (never used by a query).
      await store.db.raw('update pg_index set indisvalid = false where indexrelid = ?::regclass', [INTERRUPTED]);
      await store.db('knex_migrations').where({ name: OWNER_MIGRATION }).delete();
      expect((await indexes())[INTERRUPTED]).toBe(false);
      expect(await migrate(store.db)).toEqual([OWNER_MIGRATION]);
      expect((await indexes())[INTERRUPTED]).toBe(true);
    });
  }
});
