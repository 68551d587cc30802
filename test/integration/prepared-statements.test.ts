/**
 * The prepared statements on the request path (src/store/prepared-statements.ts): prepared once per connection
 * and reused, still valid after a migration adds a column, and a failing one gives its connection back.
 */
import { UserRepository } from '../../src/accounts/users.js';
import { closeDatabase, type Database, migrate, openDatabase } from '../../src/store/database.js';
import { run, statement } from '../../src/store/prepared-statements.js';
import { createTestDatabase, postgresUrl, sqlKinds, type TestDatabase, uniqueName } from '../support/environment.js';

const TWICE = statement('test_twice', 'select $1::int * 2 as doubled');
const BAD_CAST = statement('test_bad_cast', 'select $1::uuid as id');

test('a statement name is declared once', () => {
  expect(() => statement('test_twice', 'select 1')).toThrow(/declared twice/);
});

describe.each(sqlKinds)('prepared statements on %s', (kind) => {
  let store: TestDatabase;
  beforeAll(async () => {
    store = await createTestDatabase(kind);
  });
  afterAll(() => store.drop());

  test('runs with its values, again and again', async () => {
    for (const value of [1, 2, 21]) expect(await run(store.db, TWICE, [value])).toEqual([{ doubled: value * 2 }]);
  });

  test('a failing statement rejects with the database error and leaves the pool usable', async () => {
    await expect(run(store.db, BAD_CAST, ['not-a-uuid'])).rejects.toThrow(/uuid/);
    expect(await run(store.db, TWICE, [4])).toEqual([{ doubled: 8 }]);
  });
});

// One pooled connection, so that every run reuses the statement that connection prepared.
(postgresUrl ? describe : describe.skip)('on one PostgreSQL connection', () => {
  const schema = uniqueName('test');
  let db: Database;
  beforeAll(async () => {
    db = await openDatabase({ url: postgresUrl, schema, poolMax: 1, embeddedDir: ':memory:' });
    await migrate(db);
  });
  afterAll(async () => {
    await db.raw('drop schema if exists ?? cascade', [schema]);
    await closeDatabase(db);
  });

  test('the statement is prepared once on the connection and reused', async () => {
    await run(db, TWICE, [1]);
    await run(db, TWICE, [2]);
    const prepared = await db.raw(`select count(*)::int as count from pg_prepared_statements where name = 'test_twice'`);
    expect(prepared.rows).toEqual([{ count: 1 }]);
  });

  test('with prepared statements turned off (a pooler in transaction mode), nothing is prepared', async () => {
    const unprepared = await openDatabase({ url: postgresUrl, schema, poolMax: 1, preparedStatements: false, embeddedDir: ':memory:' });
    try {
      expect(await run(unprepared, TWICE, [5])).toEqual([{ doubled: 10 }]);
      const prepared = await unprepared.raw(`select count(*)::int as count from pg_prepared_statements`);
      expect(prepared.rows).toEqual([{ count: 0 }]);
    } finally {
      await closeDatabase(unprepared);
    }
  });

  test('a user lookup still works after a migration adds a column under the running server', async () => {
    const users = new UserRepository(db, { bcryptCost: 4 });
    const user = await users.create({ email: 'grace@example.test', password: 'compiler compiler', roles: [] });
    expect((await users.findById(user.id))?.email).toBe('grace@example.test');
    await db.raw('alter table users add column nickname text');
    expect((await users.findById(user.id))?.email).toBe('grace@example.test');
  });
});
