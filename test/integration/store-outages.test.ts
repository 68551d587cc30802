/**
 * Which errors count as a store outage (src/store/outages.ts): the ones the real drivers raise when PostgreSQL or
 * Redis cannot be reached, and none of the ones that mean a bad query or a refused request.
 */
import { type Socket, createServer } from 'node:net';
import { Redis } from 'ioredis';
import { errors } from 'oidc-provider';
import { closeDatabase, migrate, openDatabase } from '../../src/store/database.js';
import { run, statement } from '../../src/store/prepared-statements.js';
import { openRedis } from '../../src/store/redis.js';
import { OUTAGE_ANSWER, StoreUnavailable, answerOutage, isStoreOutage, translatingStoreErrors } from '../../src/store/outages.js';
import { type TestDatabase, createTestDatabase, postgresUrl, uniqueName } from '../support/environment.js';
import { type TcpProxy, startTcpProxy } from '../support/tcp-proxy.js';

/** A port with a listener that accepts connections and never says a word (a store that hangs). */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
  const { port, close } = await silentServer();
  await close();
  return port;
}

const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error);

describe('errors of an unreachable store', () => {
  test('Redis refusing connections', async () => {
    const redis = new Redis({ port: await closedPort(), maxRetriesPerRequest: 1, retryStrategy: () => 10, lazyConnect: false });
    redis.on('error', () => undefined);
    const error = await failure(redis.get('x'));
    redis.disconnect();
    expect(error).toBeInstanceOf(Error);
    expect(isStoreOutage(error)).toBe(true);
  });

  test('Redis accepting the connection and never answering: given up after the command timeout', async () => {
    const silent = await silentServer();
    const redis = openRedis(`redis://127.0.0.1:${silent.port}`);
    redis.on('error', () => undefined);
    const started = performance.now();
    const error = await failure(redis.get('x'));
    const waited = performance.now() - started;
    redis.disconnect();
    await silent.close();
    expect(isStoreOutage(error)).toBe(true);
    expect(waited).toBeLessThan(9_000);
  }, 15_000);

  test('PostgreSQL refusing connections', async () => {
    const db = await openDatabase({ url: `postgres://postgres@127.0.0.1:${await closedPort()}/test`, embeddedDir: '' });
    const error = await failure(db.raw('select 1'));
    await closeDatabase(db);
    expect(isStoreOutage(error)).toBe(true);
  });

  test('PostgreSQL accepting the connection and never answering: given up after the connect timeout', async () => {
    const silent = await silentServer();
    const db = await openDatabase({ url: `postgres://postgres@127.0.0.1:${silent.port}/test`, embeddedDir: '' });
    const started = performance.now();
    const error = await failure(db.raw('select 1'));
    const waited = performance.now() - started;
    await closeDatabase(db);
    await silent.close();
    expect(isStoreOutage(error)).toBe(true);
    expect(waited).toBeLessThan(9_000);
  }, 15_000);

  test('PostgreSQL and the server side of a connection: shutdown and too many connections', () => {
    for (const code of ['57P01', '57P03', '53300', '08006', '25006']) {
      expect(isStoreOutage(Object.assign(new Error('from the server'), { code }))).toBe(true);
    }
    expect(isStoreOutage(new Error('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(isStoreOutage(new Error('READONLY You can\'t write against a read only replica.'))).toBe(true);
  });

  test('a wrapped outage is found through its cause', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(isStoreOutage(new Error('lookup failed', { cause: refused }))).toBe(true);
    expect(isStoreOutage(new AggregateError([refused], 'every address failed'))).toBe(true);
  });
});

const describeWithPostgres = postgresUrl ? describe : describe.skip;

describeWithPostgres('DATABASE_QUERY_TIMEOUT', () => {
  let database: TestDatabase;
  let relay: TcpProxy;
  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    relay = await startTcpProxy(postgresUrl as string);
  });
  afterAll(async () => {
    await relay.close();
    await database.drop();
  });
  /** One connection, so a query after a failed one shows whether the pool kept a usable connection. */
  const openWithTimeout = (url: string) => openDatabase({ ...database.options, url, poolMax: 1, queryTimeoutSeconds: 1 });

  test('PostgreSQL ends a query waiting on a lock held elsewhere: an outage, and the connection serves on', async () => {
    const db = await openWithTimeout(postgresUrl as string);
    await database.db.raw('create table timeout_probe (id int primary key, n int)');
    await database.db.raw('insert into timeout_probe values (1, 0)');
    const holder = await database.db.transaction();
    try {
      await holder.raw('select * from timeout_probe where id = 1 for update');
      const error = await failure(db.raw('update timeout_probe set n = n + 1 where id = 1'));
      expect(error).toMatchObject({ code: '57014' });
      expect(isStoreOutage(error)).toBe(true);
    } finally {
      await holder.rollback();
      await database.db.raw('drop table timeout_probe');
    }
    expect((await db.raw('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await closeDatabase(db);
  });

  test('a connection that goes silent mid-query is given up a moment after the timeout and replaced', async () => {
    const db = await openWithTimeout(relay.url);
    expect((await db.raw('select 1 as one')).rows).toEqual([{ one: 1 }]);
    const pending = failure(db.raw('select pg_sleep(0.5)'));
    relay.silence();
    const started = performance.now();
    const error = await pending;
    const waited = performance.now() - started;
    expect(isStoreOutage(error)).toBe(true);
    expect(waited).toBeLessThan(9_000);
    // The pool dropped the lost connection instead of queueing the next query behind it.
    expect((await db.raw('select 2 as two')).rows).toEqual([{ two: 2 }]);
    await closeDatabase(db);
  }, 15_000);

  test('the same wait through a prepared statement on the request path', async () => {
    const db = await openWithTimeout(relay.url);
    const sleep = statement('timeout_probe_sleep', 'select pg_sleep($1::float) as slept');
    expect(await run(db, sleep, [0])).toHaveLength(1);
    const pending = failure(run(db, sleep, [0.5]));
    relay.silence();
    expect(isStoreOutage(await pending)).toBe(true);
    expect(await run(db, sleep, [0])).toHaveLength(1);
    await closeDatabase(db);
  }, 15_000);

  test('migrations run without it: one waiting longer for a lock still completes', async () => {
    const schema = uniqueName('migrate_timeout');
    const db = await openDatabase({ url: postgresUrl, schema, embeddedDir: ':memory:', queryTimeoutSeconds: 1 });
    try {
      await migrate(db);
      const holder = await db.transaction();
      await holder.raw('lock table knex_migrations in access exclusive mode');
      const migrating = migrate(db);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      await holder.rollback();
      expect(await migrating).toEqual([]);
    } finally {
      await db.raw('drop schema if exists ?? cascade', [schema]);
      await closeDatabase(db);
    }
  }, 15_000);
});

describeWithPostgres('errors that are not outages', () => {
  test('bad SQL, a broken constraint, a refused request and a bug', async () => {
    const { db, drop } = await createTestDatabase('postgres');
    try {
      await db.raw('create table outage_probe (id int primary key)');
      await db.raw('insert into outage_probe values (1)');
      expect(isStoreOutage(await failure(db.raw('selec 1')))).toBe(false);
      expect(isStoreOutage(await failure(db.raw('insert into outage_probe values (1)')))).toBe(false);
      expect(isStoreOutage(new errors.InvalidGrant('grant already consumed'))).toBe(false);
      expect(isStoreOutage(new TypeError("Cannot read properties of undefined (reading 'subjectType')"))).toBe(false);
    } finally {
      await drop();
    }
  });
});

describe('translatingStoreErrors', () => {
  const store = {
    calls: 0,
    async read(): Promise<string> {
      this.calls += 1;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    },
    async refuse(): Promise<string> {
      throw new errors.InvalidGrant('grant already consumed');
    },
    async answer(): Promise<string> {
      return 'ok';
    },
  };
  const translated = translatingStoreErrors(store, ['read', 'refuse', 'answer']);

  test('an outage becomes what oidc-provider renders as 503 temporarily_unavailable', async () => {
    const error = await failure(translated.read());
    expect(error).toBeInstanceOf(StoreUnavailable);
    expect(error).toMatchObject({ status: 503, expose: true, error: 'temporarily_unavailable', cause: { code: 'ECONNREFUSED' } });
    expect(store.calls).toBe(1);
  });

  test('anything else, and every answer, passes through unchanged', async () => {
    expect(await failure(translated.refuse())).toBeInstanceOf(errors.InvalidGrant);
    expect(await translated.answer()).toBe('ok');
  });
});

describe('answerOutage (the provider\'s server_error event)', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

  test('turns the provider\'s 500 JSON answer to an outage into 503 temporarily_unavailable', () => {
    const ctx = { status: 500, body: { error: 'server_error', error_description: 'oops! something went wrong' } as unknown };
    expect(answerOutage(ctx, refused)).toBe(true);
    expect(ctx).toEqual({ status: 503, body: OUTAGE_ANSWER });
  });

  test('leaves a page (made by renderError) and every other error alone', () => {
    const page = { status: 503, body: '<!doctype html>…' as unknown };
    expect(answerOutage(page, refused)).toBe(true);
    expect(page.body).toBe('<!doctype html>…');
    const bug = { status: 500, body: { error: 'server_error' } as unknown };
    expect(answerOutage(bug, new TypeError('x is undefined'))).toBe(false);
    expect(bug.status).toBe(500);
  });
});
