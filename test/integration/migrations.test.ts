/**
 * Migrations as an operator meets them: every index the request path and the admin operations rely on is there
 * and valid after `migrate`, and a concurrent index build that was interrupted (which leaves an invalid index
 * behind on PostgreSQL) is built afresh by the next `migrate` instead of being taken as done.
 */
import { migrate } from '../../src/store/database.js';
import { type TestDatabase, createTestDatabase, sqlKinds } from '../support/environment.js';

const CLIENT_INDEX = 'oidc_models_client_id';
const CLIENT_MIGRATION = '20261204_0003_client_records';

describe.each(sqlKinds)('migrations on %s', (kind) => {
  let store: TestDatabase;
  beforeAll(async () => {
    store = await createTestDatabase(kind);
  });
  afterAll(() => store.drop());

  /** Whether the index exists in the current schema, and whether PostgreSQL may use it. */
  async function clientIndex(): Promise<{ valid: boolean } | undefined> {
    const result = await store.db.raw(
      `select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
       where c.relname = ? and c.relnamespace = current_schema()::regnamespace`,
      [CLIENT_INDEX],
    );
    return result.rows[0];
  }

  test('the client index is built, and valid', async () => {
    expect(await clientIndex()).toEqual({ valid: true });
  });

  (kind === 'postgres' ? test : test.skip)('an interrupted concurrent build is dropped and built again', async () => {
    // What a build killed half-way leaves: the index in the catalog, marked invalid (never used by a query).
    await store.db.raw('update pg_index set indisvalid = false where indexrelid = ?::regclass', [CLIENT_INDEX]);
    await store.db('knex_migrations').where({ name: CLIENT_MIGRATION }).delete();
    expect(await clientIndex()).toEqual({ valid: false });
    expect(await migrate(store.db)).toEqual([CLIENT_MIGRATION]);
    expect(await clientIndex()).toEqual({ valid: true });
  });
});
