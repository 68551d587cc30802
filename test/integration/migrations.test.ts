/**
 * Migrations as an operator meets them: every index the request path and the admin operations rely on is there
 * and valid after `migrate`; an instance waits for another's migration rather than fail; and a concurrent index
 * build that was interrupted (which leaves an invalid index behind on PostgreSQL) is built afresh by the next
 * `migrate` instead of being taken as done.
 */
import { migrate } from '../../src/store/database.js';
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

  test('an instance waits while another one holds the migration lock, then migrates', async () => {
    await store.db('knex_migrations').where({ name: OWNER_MIGRATION }).delete();
    await store.db('knex_migrations_lock').update({ is_locked: 1 }); // another instance, migrating
    let settled = false;
    const waiting = migrate(store.db).finally(() => {
      settled = true;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(settled).toBe(false);
    } finally {
      await store.db('knex_migrations_lock').update({ is_locked: 0 }); // the other instance is done
    }
    expect(await waiting).toEqual([OWNER_MIGRATION]);
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
