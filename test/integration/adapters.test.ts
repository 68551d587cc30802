/**
 * One conformance suite for oidc-provider's storage contract, run against every store we ship: the SQL adapter on
 * PostgreSQL and on PGlite, and the Redis adapter. Then what only one store has: Redis TTLs, SQL pruning, and the
 * factory that routes models between them.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { type Adapter, type AdapterPayload, errors } from 'oidc-provider';
import { UserRepository } from '../../src/accounts/users.js';
import { createAdapterFactory } from '../../src/store/adapters.js';
import { type Database, openDatabase } from '../../src/store/database.js';
import { readGrantWithUser } from '../../src/store/grant-read-ahead.js';
import { PRUNE_LOCK_KEY, pruneExpired, pruneUnlessBusy, schedulePruning } from '../../src/store/prune.js';
import type { Cluster } from 'ioredis';
import type { RedisClient } from '../../src/store/redis.js';
import { RedisAdapter } from '../../src/store/redis-adapter.js';
import { RefreshTokenAdapter } from '../../src/store/refresh-token-adapter.js';
import { inRequestScope } from '../../src/store/request-scope.js';
import { storageId } from '../../src/store/storage-id.js';
import { CLOCK_TOLERANCE_SECONDS, SqlAdapter } from '../../src/store/sql-adapter.js';
import {
  createTestDatabase,
  createTestRedis,
  describeWithRedis,
  keysMatching,
  redisUrl,
  type SqlKind,
  sqlKinds,
  type TestDatabase,
  type TestRedis,
} from '../support/environment.js';
import { waitFor } from '../support/process.js';
import { startRedisCluster } from '../support/redis-cluster.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const epochNow = () => Math.floor(Date.now() / 1000);

/** A payload shaped like the ones the library writes. */
function tokenPayload(kind: string, extra: Partial<AdapterPayload> = {}): AdapterPayload {
  const jti = randomUUID();
  return {
    jti,
    kind,
    iat: epochNow(),
    exp: epochNow() + 60,
    clientId: 'client-1',
    accountId: 'account-1',
    scope: 'openid offline_access',
    claims: { id_token: { email: null } },
    resource: ['https://api.example.test'],
    ...extra,
  };
}

async function save(adapter: Adapter, payload: AdapterPayload, expiresIn = 60): Promise<string> {
  await adapter.upsert(payload.jti as string, payload, expiresIn);
  return payload.jti as string;
}

/** The contract every store must keep; `adapter(model)` gives that store's adapter for a model. */
function itKeepsTheAdapterContract(adapter: (model: string) => Adapter) {
  test('upsert then find returns the payload as written', async () => {
    const payload = tokenPayload('AccessToken', { grantId: randomUUID(), extra: { nested: [1, 'two', { three: 3 }] } });
    await save(adapter('AccessToken'), payload);
    expect(await adapter('AccessToken').find(payload.jti as string)).toEqual(payload);
  });

  test('find of an unknown id is empty', async () => {
    expect(await adapter('AccessToken').find(randomUUID())).toBeFalsy();
    expect(await adapter('AccessToken').find('grant:not-an-id')).toBeFalsy();
  });

  test('models are separate namespaces: the same id in another model is not found', async () => {
    const id = await save(adapter('AccessToken'), tokenPayload('AccessToken'));
    expect(await adapter('ClientCredentials').find(id)).toBeFalsy();
  });

  test('upsert replaces an existing record', async () => {
    const first = tokenPayload('Interaction', { returnTo: 'https://first.example' });
    const id = await save(adapter('Interaction'), first);
    const second = { ...first, returnTo: 'https://second.example', result: { login: { accountId: 'a' } } };
    await adapter('Interaction').upsert(id, second, 60);
    expect(await adapter('Interaction').find(id)).toEqual(second);
  });

  test('a record past its expiry is still found within the clock tolerance, and absent after it', async () => {
    const model = adapter('AccessToken');
    const withinTolerance = await save(model, tokenPayload('AccessToken'), 5 - CLOCK_TOLERANCE_SECONDS);
    const pastTolerance = await save(model, tokenPayload('AccessToken'), -CLOCK_TOLERANCE_SECONDS - 1);
    const aboutToGo = await save(model, tokenPayload('AccessToken'), 1 - CLOCK_TOLERANCE_SECONDS);
    await sleep(20);
    expect(await model.find(withinTolerance)).toBeTruthy();
    expect(await model.find(pastTolerance)).toBeFalsy();
    expect(await model.find(aboutToGo)).toBeTruthy();
    await sleep(1200);
    expect(await model.find(aboutToGo)).toBeFalsy();
  });

  test('destroy removes the record', async () => {
    const id = await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId: randomUUID() }));
    await adapter('AccessToken').destroy(id);
    expect(await adapter('AccessToken').find(id)).toBeFalsy();
    await expect(adapter('AccessToken').destroy(id)).resolves.not.toThrow();
  });

  test('consume marks the record consumed (epoch seconds) and keeps it', async () => {
    const payload = tokenPayload('AuthorizationCode', { grantId: randomUUID() });
    const id = await save(adapter('AuthorizationCode'), payload);
    expect((await adapter('AuthorizationCode').find(id))?.consumed).toBeFalsy();
    await adapter('AuthorizationCode').consume(id);
    const found = await adapter('AuthorizationCode').find(id);
    expect(found).toEqual({ ...payload, consumed: expect.any(Number) });
    expect(Math.abs((found?.consumed as number) - epochNow())).toBeLessThanOrEqual(5);
  });

  test('a consumed record saved again stays consumed', async () => {
    const payload = tokenPayload('DeviceCode', { userCode: randomUUID(), grantId: randomUUID() });
    const id = await save(adapter('DeviceCode'), payload);
    await adapter('DeviceCode').consume(id);
    const consumed = await adapter('DeviceCode').find(id);
    await adapter('DeviceCode').upsert(id, { ...consumed, error: 'access_denied' } as AdapterPayload, 60);
    expect((await adapter('DeviceCode').find(id))?.consumed).toBe(consumed?.consumed);
  });

  test('consuming twice, or consuming an unknown id, fails with invalid_grant', async () => {
    const id = await save(adapter('AuthorizationCode'), tokenPayload('AuthorizationCode'));
    await adapter('AuthorizationCode').consume(id);
    await expect(adapter('AuthorizationCode').consume(id)).rejects.toBeInstanceOf(errors.InvalidGrant);
    await expect(adapter('AuthorizationCode').consume(randomUUID())).rejects.toBeInstanceOf(errors.InvalidGrant);
  });

  test.each(['AuthorizationCode', 'RefreshToken'])('20 concurrent consumes of one %s: exactly one succeeds', async (model) => {
    const id = await save(adapter(model), tokenPayload(model, { grantId: randomUUID() }));
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => adapter(model).consume(id)));
    const fulfilled = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const rejected = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(19);
    for (const { reason } of rejected) {
      expect(reason).toBeInstanceOf(errors.InvalidGrant);
      expect(reason).toMatchObject({ status: 400, error: 'invalid_grant' });
    }
    expect((await adapter(model).find(id))?.consumed).toEqual(expect.any(Number));
  });

  test("revokeByGrantId removes that grant's records of that model only", async () => {
    const revoked = randomUUID();
    const kept = randomUUID();
    const revokedTokens = [
      await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId: revoked })),
      await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId: revoked }), 3600),
    ];
    const otherGrant = await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId: kept }));
    const otherModel = await save(adapter('AuthorizationCode'), tokenPayload('AuthorizationCode', { grantId: revoked }));

    await adapter('AccessToken').revokeByGrantId(revoked);

    for (const id of revokedTokens) expect(await adapter('AccessToken').find(id)).toBeFalsy();
    expect(await adapter('AccessToken').find(otherGrant)).toBeTruthy();
    expect(await adapter('AuthorizationCode').find(otherModel)).toBeTruthy();
    await expect(adapter('AccessToken').revokeByGrantId(revoked)).resolves.not.toThrow();
  });

  test('a token saved after its grant was revoked belongs to the grant again', async () => {
    const grantId = randomUUID();
    await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId }));
    await adapter('AccessToken').revokeByGrantId(grantId);
    const later = await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId }));
    await adapter('AccessToken').revokeByGrantId(grantId);
    expect(await adapter('AccessToken').find(later)).toBeFalsy();
  });

  test('findByUid finds the current Session as its id changes', async () => {
    const sessions = adapter('Session');
    const uid = randomUUID();
    const first = tokenPayload('Session', { uid, accountId: 'account-1', authorizations: {} });
    await save(sessions, first);
    expect(await sessions.findByUid(uid)).toEqual(first);

    // What the library does when the session id is regenerated (e.g. on login): destroy the old, save the new.
    const second = { ...first, jti: randomUUID(), loginTs: epochNow() };
    await sessions.destroy(first.jti as string);
    await save(sessions, second);
    expect(await sessions.findByUid(uid)).toEqual(second);
    expect(await sessions.find(first.jti as string)).toBeFalsy();

    await sessions.destroy(second.jti as string);
    expect(await sessions.findByUid(uid)).toBeFalsy();
    expect(await sessions.findByUid(randomUUID())).toBeFalsy();
  });

  test('findByUserCode finds the DeviceCode', async () => {
    const userCode = 'BCDF-GHJK';
    const payload = tokenPayload('DeviceCode', { userCode: `${userCode}-${randomUUID()}`, grantId: randomUUID() });
    const id = await save(adapter('DeviceCode'), payload);
    expect(await adapter('DeviceCode').findByUserCode(payload.userCode as string)).toEqual(payload);
    expect(await adapter('DeviceCode').findByUserCode(userCode)).toBeFalsy();

    await adapter('DeviceCode').revokeByGrantId(payload.grantId as string);
    expect(await adapter('DeviceCode').find(id)).toBeFalsy();
    expect(await adapter('DeviceCode').findByUserCode(payload.userCode as string)).toBeFalsy();
  });
}

async function countRows(db: Database, model: string): Promise<number> {
  const [row] = await db('oidc_models').where({ model }).count({ count: '*' });
  return Number(row?.count);
}

async function insertRows(db: Database, model: string, expiresAt: string | null, count: number) {
  const rows = Array.from({ length: count }, () => ({
    model,
    id: randomUUID(),
    payload: JSON.stringify({}),
    expires_at: expiresAt === null ? null : db.raw(`now() + interval '${expiresAt}'`),
  }));
  await db('oidc_models').insert(rows);
}

/** A pino logger whose lines the test can read. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

describe.each(sqlKinds)('SqlAdapter on %s', (kind: SqlKind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(() => testDb.drop());

  itKeepsTheAdapterContract((model) => new SqlAdapter(model, testDb.db));

  test('indexed columns mirror the payload', async () => {
    const payload = tokenPayload('Session', { uid: randomUUID(), grantId: 'g-1', userCode: 'U-1', accountId: 'acc-9' });
    const id = await save(new SqlAdapter('Session', testDb.db), payload);
    const row = await testDb.db('oidc_models').where({ model: 'Session', id: storageId(id) }).first();
    expect(row).toMatchObject({ grant_id: 'g-1', uid: payload.uid, user_code: 'U-1', account_id: 'acc-9', consumed_at: null });
  });

  test('a record without expiresIn never expires', async () => {
    const payload = tokenPayload('RegistrationAccessToken');
    await new SqlAdapter('RegistrationAccessToken', testDb.db).upsert(payload.jti as string, payload);
    const row = await testDb.db('oidc_models').where({ model: 'RegistrationAccessToken', id: storageId(payload.jti as string) }).first();
    expect(row.expires_at).toBeNull();
    expect(await new SqlAdapter('RegistrationAccessToken', testDb.db).find(payload.jti as string)).toEqual(payload);
  });
});

describe.each(sqlKinds)('refresh-token rotation in one request on %s', (kind: SqlKind) => {
  let testDb: TestDatabase;
  let grants: SqlAdapter;
  let tokens: RefreshTokenAdapter;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    grants = new SqlAdapter('Grant', testDb.db);
    tokens = new RefreshTokenAdapter(testDb.db, { graceSeconds: 0 });
  });
  afterAll(() => testDb.drop());

  /** consumed_at of the stored token (null: not consumed), or 'no row'. */
  const consumedAt = async (id: string): Promise<Date | null | 'no row'> => {
    const row = await testDb.db('oidc_models').where({ model: 'RefreshToken', id: storageId(id) }).first();
    return row ? row.consumed_at : 'no row';
  };

  async function tokenOfNewGrant(): Promise<{ grantId: string; token: string; grant: AdapterPayload }> {
    const grant = tokenPayload('Grant');
    const grantId = await save(grants, grant);
    const token = await save(tokens, tokenPayload('RefreshToken', { grantId }));
    return { grantId, token, grant };
  }

  test('finding a refresh token reads its grant in the same query, for the Grant lookup that follows', async () => {
    const { grantId, token, grant } = await tokenOfNewGrant();
    await inRequestScope(async () => {
      expect((await tokens.find(token))?.grantId).toBe(grantId);
      // Gone from the table now, yet found: the lookup is answered from the read made with the token…
      await testDb.db('oidc_models').where({ model: 'Grant', id: storageId(grantId) }).del();
      expect(await grants.find(grantId)).toEqual(grant);
      // …once: a second lookup goes to the store again.
      expect(await grants.find(grantId)).toBeUndefined();
    });
  });

  test("finding a refresh token reads its user too, for the account lookup that follows", async () => {
    const users = new UserRepository(testDb.db, { bcryptCost: 4 });
    const user = await users.create({ email: `${randomUUID()}@example.test`, name: 'Ada', password: 'analytical engine', roles: ['admin'] });
    await users.revokeSessions(user.id); // one timestamp more to carry over (and it deletes the user's tokens: first)
    const grantId = await save(grants, tokenPayload('Grant', { accountId: user.id }));
    const token = await save(tokens, tokenPayload('RefreshToken', { grantId, accountId: user.id }));
    const stored = await users.findById(user.id);
    expect(stored?.sessionsRevokedAt).toBeInstanceOf(Date);
    await inRequestScope(async () => {
      expect(await tokens.find(token)).toBeDefined();
      await testDb.db('users').where({ id: user.id }).del();
      // Gone from the table, yet found as it was read with the token, dates and all; and only once.
      expect(await users.findById(user.id)).toEqual(stored);
      expect(await users.findById(user.id)).toBeUndefined();
    });
  });

  test('a token of a deleted user, or of an account id that is no user id, leaves "no user"', async () => {
    const users = new UserRepository(testDb.db, { bcryptCost: 4 });
    const missing = randomUUID();
    const grantId = await save(grants, tokenPayload('Grant'));
    const ofMissing = await save(tokens, tokenPayload('RefreshToken', { grantId, accountId: missing }));
    const ofOddId = await save(tokens, tokenPayload('RefreshToken', { grantId, accountId: "x'; drop table users; --" }));
    await inRequestScope(async () => {
      expect(await tokens.find(ofMissing)).toBeDefined();
      expect(await users.findById(missing)).toBeUndefined();
      expect(await tokens.find(ofOddId)).toBeDefined();
    });
  });

  test('a token whose grant is gone reads as such', async () => {
    const { grantId, token } = await tokenOfNewGrant();
    await testDb.db('oidc_models').where({ model: 'Grant', id: storageId(grantId) }).del();
    await inRequestScope(async () => {
      expect(await tokens.find(token)).toBeDefined();
      expect(await grants.find(grantId)).toBeUndefined();
    });
  });

  test('the consumption is written with the successor, in one statement', async () => {
    const { grantId, token } = await tokenOfNewGrant();
    const successor = tokenPayload('RefreshToken', { grantId });
    await inRequestScope(async () => {
      await tokens.consume(token);
      expect(await consumedAt(token)).toBeNull();
      await save(tokens, successor);
    });
    expect(await consumedAt(token)).toBeInstanceOf(Date);
    expect(await consumedAt(successor.jti as string)).toBeNull();
  });

  test('of two requests rotating one token, one stores its successor and the other stores nothing', async () => {
    const { grantId, token } = await tokenOfNewGrant();
    const successors = [tokenPayload('RefreshToken', { grantId }), tokenPayload('RefreshToken', { grantId })];
    const outcomes = await Promise.allSettled(
      successors.map((successor) =>
        inRequestScope(async () => {
          await tokens.consume(token);
          await save(tokens, successor);
        }),
      ),
    );
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(errors.InvalidGrant);
    const stored = await Promise.all(successors.map((successor) => consumedAt(successor.jti as string)));
    expect(stored.filter((value) => value === 'no row')).toHaveLength(1);
  });

  test('outside a request, consume writes at once', async () => {
    const { token } = await tokenOfNewGrant();
    await tokens.consume(token);
    expect(await consumedAt(token)).toBeInstanceOf(Date);
    await expect(tokens.consume(token)).rejects.toBeInstanceOf(errors.InvalidGrant);
  });
});

/**
 * A replay inside the grace window racing the owner's rotation of the replayed token's successor. Each test holds
 * one side's statement open in a transaction of its own (its row locks taken, its effect written, not committed),
 * waits until the adapter's side is blocked on those locks, then commits: the order that let both chains live.
 */
(sqlKinds.includes('postgres') ? describe : describe.skip)('refresh-token forks racing a rotation, on postgres', () => {
  let testDb: TestDatabase;
  let grants: SqlAdapter;
  let tokens: RefreshTokenAdapter;
  beforeAll(async () => {
    testDb = await createTestDatabase('postgres');
    grants = new SqlAdapter('Grant', testDb.db);
    tokens = new RefreshTokenAdapter(testDb.db, { graceSeconds: 60 });
  });
  afterAll(() => testDb?.drop());

  async function rotate(from: string, grantId: string): Promise<string> {
    const successor = tokenPayload('RefreshToken', { grantId });
    await inRequestScope(async () => {
      await tokens.consume(from);
      await save(tokens, successor);
    });
    return successor.jti as string;
  }

  async function chainOfNewGrant() {
    const grantId = await save(grants, tokenPayload('Grant'));
    const token = await save(tokens, tokenPayload('RefreshToken', { grantId }));
    return { grantId, token, first: await rotate(token, grantId) };
  }

  const tokenRow = (id: string) => testDb.db('oidc_models').where({ model: 'RefreshToken', id: storageId(id) }).first();
  const liveTokensOf = async (grantId: string) =>
    (await testDb.db('oidc_models').where({ model: 'RefreshToken', grant_id: grantId }).whereNull('consumed_at')).length;

  /** Until a session waits for a lock that the transaction `holder` holds. */
  async function untilBlockedBy(holder: Knex.Transaction) {
    const { rows } = await holder.raw('select pg_backend_pid() as pid');
    const pid = rows[0].pid as number;
    await waitFor(async () => {
      const blocked = await testDb.db.raw('select count(*)::int as n from pg_stat_activity where ? = any(pg_blocking_pids(pid))', [pid]);
      return blocked.rows[0].n > 0;
    }, 'a statement waiting for the held lock');
  }

  test("a replay while the owner's rotation of the first successor is in flight is refused once that rotation commits", async () => {
    const { grantId, token, first } = await chainOfNewGrant();
    // The owner's rotation of `first`: its row locked and consumed, not committed.
    const owner = await testDb.db.transaction();
    await owner('oidc_models').where({ model: 'RefreshToken', id: storageId(first) }).update({ consumed_at: owner.fn.now() });
    const replay = rotate(token, grantId);
    replay.catch(() => undefined);
    await untilBlockedBy(owner);
    await owner.commit();
    // The chain moved on while the replay waited: its sibling would be a second live branch.
    await expect(replay).rejects.toBeInstanceOf(errors.InvalidGrant);
    expect(await liveTokensOf(grantId)).toBe(0);
  });

  test("the owner rotating the first successor while a replay's sibling is being inserted prunes that sibling", async () => {
    const { grantId, token, first } = await chainOfNewGrant();
    // A replay of `token` in the window: its siblings marked forked (so `first` locked) and its own row inserted,
    // not committed.
    const replay = await testDb.db.transaction();
    await replay('oidc_models').where({ model: 'RefreshToken', grant_id: grantId, rotated_from: storageId(token) }).whereNull('consumed_at').update({ fork: 'forked' });
    const template = await replay('oidc_models').where({ model: 'RefreshToken', id: storageId(first) }).first();
    const sibling = randomUUID();
    await replay('oidc_models').insert({ ...template, id: storageId(sibling), fork: 'forked' });
    const owner = rotate(first, grantId);
    await untilBlockedBy(replay);
    await replay.commit();
    const ownersNext = await owner;
    expect(await tokenRow(sibling)).toMatchObject({ fork: 'pruned', consumed_at: expect.any(Date) });
    expect(await tokenRow(ownersNext)).toMatchObject({ consumed_at: null });
    expect(await liveTokensOf(grantId)).toBe(1);
  });
});

describe.each(sqlKinds)('reading a grant with its user at userinfo on %s', (kind: SqlKind) => {
  let testDb: TestDatabase;
  let grants: SqlAdapter;
  let users: UserRepository;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    grants = new SqlAdapter('Grant', testDb.db);
    users = new UserRepository(testDb.db, { bcryptCost: 4 });
  });
  afterAll(() => testDb.drop());

  async function userWithGrant() {
    const user = await users.create({ email: `${randomUUID()}@example.test`, name: 'Grace', password: 'compiler first', roles: ['ops'] });
    const grant = tokenPayload('Grant', { accountId: user.id });
    const grantId = await save(grants, grant);
    return { user: await users.findById(user.id), grant, grantId };
  }

  const forget = async (grantId: string, userId: string) => {
    await testDb.db('oidc_models').where({ model: 'Grant', id: storageId(grantId) }).del();
    await testDb.db('users').where({ id: userId }).del();
  };

  test('one query reads both, for the account lookup and the Grant lookup that follow, once each', async () => {
    const { user, grant, grantId } = await userWithGrant();
    await inRequestScope(async () => {
      await readGrantWithUser(testDb.db, grantId, user!.id);
      // Gone from the tables, yet found: both lookups are answered from the read made ahead of them…
      await forget(grantId, user!.id);
      expect(await users.findById(user!.id)).toEqual(user);
      expect(await grants.find(grantId)).toEqual(grant);
      // …once: the next lookups go to the store again.
      expect(await users.findById(user!.id)).toBeUndefined();
      expect(await grants.find(grantId)).toBeUndefined();
    });
  });

  test('a grant or user missing when read ahead is missing for the lookups that follow, and consumption carries over', async () => {
    const { user } = await userWithGrant();
    const late = tokenPayload('Grant', { accountId: user!.id });
    await inRequestScope(async () => {
      await readGrantWithUser(testDb.db, late.jti as string, randomUUID());
      // Stored after the read: the lookup is answered from the read, which found no such grant.
      await save(grants, late);
      expect(await grants.find(late.jti as string)).toBeUndefined();
    });
    expect(await grants.find(late.jti as string)).toEqual(late);
    const consumed = await userWithGrant();
    await grants.consume(consumed.grantId);
    await inRequestScope(async () => {
      await readGrantWithUser(testDb.db, consumed.grantId, consumed.user!.id);
      expect((await grants.find(consumed.grantId))?.consumed).toEqual(expect.any(Number));
    });
  });

  test('outside a request, or for an account id that is no user id, nothing is read ahead', async () => {
    const { user, grantId } = await userWithGrant();
    await readGrantWithUser(testDb.db, grantId, user!.id);
    await inRequestScope(async () => {
      await readGrantWithUser(testDb.db, grantId, "x'; drop table users; --");
      await forget(grantId, user!.id);
      expect(await users.findById(user!.id)).toBeUndefined();
      expect(await grants.find(grantId)).toBeUndefined();
    });
  });
});

describe.each(sqlKinds)('pruning expired SQL records on %s', (kind: SqlKind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(() => testDb.drop());
  beforeEach(() => testDb.db('oidc_models').del());

  test('pruneExpired deletes rows expired past the tolerance, in batches, and keeps the rest', async () => {
    const { db } = testDb;
    await insertRows(db, 'Expired', '-1 hour', 7);
    await insertRows(db, 'WithinTolerance', '-5 seconds', 2);
    await insertRows(db, 'Live', '1 hour', 3);
    await insertRows(db, 'NeverExpires', null, 1);

    expect(await pruneExpired(db, { batchSize: 3 })).toBe(7);
    expect(await countRows(db, 'Expired')).toBe(0);
    expect(await countRows(db, 'WithinTolerance')).toBe(2);
    expect(await countRows(db, 'Live')).toBe(3);
    expect(await countRows(db, 'NeverExpires')).toBe(1);
    expect(await pruneExpired(db)).toBe(0);
  });

  test('pruneExpired refuses a batch size that is not a positive integer', async () => {
    await expect(pruneExpired(testDb.db, { batchSize: 0 })).rejects.toThrow('batchSize must be a positive integer');
  });

  test('audit events older than the retention are deleted, in batches; newer ones and a retention of 0 keep them', async () => {
    const { db } = testDb;
    await db('audit_events').del();
    const event = (age: string) => ({ at: db.raw(`now() - interval '${age}'`), type: `aged ${age}`, outcome: 'success' });
    await db('audit_events').insert([...Array.from({ length: 5 }, () => event('100 days')), event('89 days'), event('1 minute')]);
    const ninetyDays = 90 * 24 * 3600;

    expect(await pruneUnlessBusy(db, { auditRetentionSeconds: 0 })).toEqual({ records: 0, auditEvents: 0, emailLinks: 0 });
    expect(await pruneUnlessBusy(db, { auditRetentionSeconds: ninetyDays, batchSize: 2 })).toEqual({ records: 0, auditEvents: 5, emailLinks: 0 });
    expect((await db('audit_events').orderBy('at')).map((row) => row.type)).toEqual(['aged 89 days', 'aged 1 minute']);
  });

  test('schedulePruning deletes audit events past AUDIT_RETENTION and says how many', async () => {
    const { db } = testDb;
    await db('audit_events').del();
    await db('audit_events').insert({ at: db.raw(`now() - interval '2 days'`), type: 'old', outcome: 'success' });
    const { logger, lines } = capturingLogger();
    const pruning = schedulePruning(db, 0.05, logger, { auditRetentionSeconds: 24 * 3600 });
    try {
      await waitFor(() => lines.some((line) => line.msg === 'pruned audit events older than AUDIT_RETENTION' && line.deleted === 1), 'the pruned audit event to be logged', 3000);
    } finally {
      await pruning.stop();
    }
    expect(Number((await db('audit_events').count({ n: '*' }))[0]?.n)).toBe(0);
  });

  test('schedulePruning prunes in the background and logs how many rows went', async () => {
    const { db } = testDb;
    await insertRows(db, 'Expired', '-1 hour', 4);
    const { logger, lines } = capturingLogger();
    const pruning = schedulePruning(db, 0.05, logger);
    try {
      await waitFor(() => lines.some((line) => line.deleted === 4), 'the pruned batch to be logged', 3000);
    } finally {
      await pruning.stop();
    }
    expect(await countRows(db, 'Expired')).toBe(0);
  });

  if (kind === 'postgres') {
    test('with a connection pool of one, pruning still runs (the lock and the deletes share the connection)', async () => {
      await insertRows(testDb.db, 'Expired', '-1 hour', 3);
      const singleConnection = await openDatabase({ ...testDb.options, poolMax: 1 });
      try {
        expect(await pruneUnlessBusy(singleConnection)).toEqual({ records: 3, auditEvents: 0, emailLinks: 0 });
      } finally {
        await singleConnection.destroy();
      }
    });

    test('while another instance holds the pruning lock, nothing is pruned', async () => {
      const { db } = testDb;
      await insertRows(db, 'Expired', '-1 hour', 2);
      const other = await createTestDatabase('postgres');
      const connection = await other.db.client.acquireConnection();
      try {
        await other.db.select(other.db.raw('pg_advisory_lock(?)', [PRUNE_LOCK_KEY])).connection(connection);
        expect(await pruneUnlessBusy(db)).toBeUndefined();
        expect(await countRows(db, 'Expired')).toBe(2);
        await other.db.select(other.db.raw('pg_advisory_unlock(?)', [PRUNE_LOCK_KEY])).connection(connection);
        expect(await pruneUnlessBusy(db)).toEqual({ records: 2, auditEvents: 0, emailLinks: 0 });
      } finally {
        await other.db.client.releaseConnection(connection);
        await other.drop();
      }
    });
  }
});

test('schedulePruning logs a failure instead of throwing it', async () => {
  const unmigrated = await openDatabase({ embeddedDir: ':memory:' });
  const { logger, lines } = capturingLogger();
  const pruning = schedulePruning(unmigrated, 0.05, logger);
  try {
    await waitFor(() => lines.some((line) => line.msg === 'pruning expired oidc-provider records failed'), 'the pruning failure to be logged', 3000);
  } finally {
    await pruning.stop();
    await unmigrated.destroy();
  }
  const failure = lines.find((line) => line.level === 50) as { err: { message: string } };
  expect(failure.err.message).toMatch(/oidc_models/);
});

/** The Redis deployments the adapter must work on: one server (or a Sentinel-found master) and a Cluster. */
const redisDeployments: Record<string, () => Promise<Pick<TestRedis, 'keyPrefix' | 'drop'> & { redis: RedisClient }>> = {
  'one Redis server': createTestRedis,
  'a Redis Cluster of three masters': async () => {
    const cluster = await startRedisCluster();
    return { redis: cluster.client, keyPrefix: 'test:', drop: () => cluster.stop() };
  },
};

describeWithRedis.each(Object.keys(redisDeployments))('RedisAdapter on %s', (deployment: string) => {
  let testRedis: Awaited<ReturnType<(typeof redisDeployments)[string]>>;
  beforeAll(async () => {
    testRedis = await (redisDeployments[deployment] as (typeof redisDeployments)[string])();
  });
  afterAll(() => testRedis.drop());

  const adapter = (model: string) => new RedisAdapter(model, testRedis.redis, testRedis.keyPrefix);

  itKeepsTheAdapterContract(adapter);

  test('consuming an expired record fails and does not bring the key back', async () => {
    const id = await save(adapter('AuthorizationCode'), tokenPayload('AuthorizationCode'), -CLOCK_TOLERANCE_SECONDS - 1);
    await sleep(20);
    await expect(adapter('AuthorizationCode').consume(id)).rejects.toBeInstanceOf(errors.InvalidGrant);
    expect(await testRedis.redis.exists(`${testRedis.keyPrefix}AuthorizationCode:record:${storageId(id)}`)).toBe(0);
  });

  test('records live for expiresIn plus the clock tolerance', async () => {
    const id = await save(adapter('Interaction'), tokenPayload('Interaction'), 100);
    const ttl = await testRedis.redis.pttl(`${testRedis.keyPrefix}Interaction:record:${storageId(id)}`);
    expect(ttl).toBeGreaterThan((100 + CLOCK_TOLERANCE_SECONDS - 2) * 1000);
    expect(ttl).toBeLessThanOrEqual((100 + CLOCK_TOLERANCE_SECONDS) * 1000);
  });

  test('the grant index lives as long as its longest-lived member', async () => {
    const grantId = randomUUID();
    await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId }), 1000);
    await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId }), 10);
    const ttl = await testRedis.redis.pttl(`${testRedis.keyPrefix}AccessToken:grant:${grantId}`);
    expect(ttl).toBeGreaterThan((1000 + CLOCK_TOLERANCE_SECONDS - 2) * 1000);
  });

  test('records without an expiry are refused with a reason', async () => {
    const payload = tokenPayload('RegistrationAccessToken');
    await expect(adapter('RegistrationAccessToken').upsert(payload.jti as string, payload)).rejects.toThrow(
      'RegistrationAccessToken records never expire, so they cannot be kept in Redis',
    );
  });

  test('after a mixed workload every key under the prefix has a TTL', async () => {
    const grantId = randomUUID();
    const session = tokenPayload('Session', { uid: randomUUID() });
    await save(adapter('Session'), session, 3600);
    await save(adapter('DeviceCode'), tokenPayload('DeviceCode', { userCode: randomUUID(), grantId }), 600);
    const code = await save(adapter('AuthorizationCode'), tokenPayload('AuthorizationCode', { grantId }), 60);
    await adapter('AuthorizationCode').consume(code);
    await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId }), 3600);
    const destroyed = await save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId }), 3600);
    await adapter('AccessToken').destroy(destroyed);
    await adapter('DeviceCode').revokeByGrantId(grantId);

    const keys = await keysMatching(testRedis.redis, `${testRedis.keyPrefix}*`);
    expect(keys.length).toBeGreaterThan(5);
    const ttls = await Promise.all(keys.map((key) => testRedis.redis.pttl(key)));
    const withoutTtl = keys.filter((_key, index) => !((ttls[index] as number) > 0));
    expect(withoutTtl).toEqual([]);
  });

  test('revoking a grant removes its records wherever they are kept', async () => {
    const grantId = randomUUID();
    const ids = await Promise.all(Array.from({ length: 12 }, () => save(adapter('AccessToken'), tokenPayload('AccessToken', { grantId }), 600)));
    if (testRedis.redis.isCluster) {
      // The records really are spread: on a Cluster their keys hash to the slots of different masters.
      const keys = new Set(ids.map((id) => `${testRedis.keyPrefix}AccessToken:record:${storageId(id)}`));
      const masters = (testRedis.redis as Cluster).nodes('master');
      const held = await Promise.all(masters.map(async (node) => (await keysMatching(node, `${testRedis.keyPrefix}AccessToken:record:*`)).filter((key) => keys.has(key))));
      expect(held.flat().length).toBe(keys.size);
      expect(held.filter((onNode) => onNode.length > 0).length).toBeGreaterThan(1);
    }
    await adapter('AccessToken').revokeByGrantId(grantId);
    expect(await Promise.all(ids.map((id) => adapter('AccessToken').find(id)))).toEqual(ids.map(() => undefined));
  });
});

describe('createAdapterFactory', () => {
  let testDb: TestDatabase;
  let testRedis: TestRedis | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase('pglite');
    if (redisUrl) testRedis = await createTestRedis();
  });
  afterAll(async () => {
    await testDb.drop();
    await testRedis?.drop();
  });

  const clientAdapter: Adapter = {
    find: async (id) => ({ client_id: id }),
    upsert: async () => {},
    findByUid: async () => undefined,
    findByUserCode: async () => undefined,
    consume: async () => {},
    destroy: async () => {},
    revokeByGrantId: async () => {},
  };

  test('Client comes from the given client adapter, and each model gets one adapter', async () => {
    const factory = createAdapterFactory({ db: testDb.db, clientAdapter: () => clientAdapter });
    expect(await factory('Client').find('from-the-catalog')).toEqual({ client_id: 'from-the-catalog' });
    expect(factory('Client')).toBe(factory('Client'));
    expect(factory('Session')).toBe(factory('Session'));
  });

  test('a store that cannot be reached fails as 503 temporarily_unavailable, any other error as it was', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const failing: Adapter = {
      ...clientAdapter,
      find: async () => {
        throw refused;
      },
      consume: async () => {
        throw new errors.InvalidGrant('grant already consumed');
      },
    };
    const client = createAdapterFactory({ db: testDb.db, clientAdapter: () => failing })('Client');
    await expect(client.find('x')).rejects.toMatchObject({ status: 503, error: 'temporarily_unavailable', cause: refused });
    await expect(client.consume('x')).rejects.toBeInstanceOf(errors.InvalidGrant);
  });

  test('without Redis every model is kept in SQL', async () => {
    const factory = createAdapterFactory({ db: testDb.db, clientAdapter: () => clientAdapter });
    const id = await save(factory('Session'), tokenPayload('Session', { uid: randomUUID() }));
    expect(await testDb.db('oidc_models').where({ model: 'Session', id: storageId(id) }).first()).toBeTruthy();
  });

  test('a token is not looked for under an id of another kind’s length', async () => {
    const factory = createAdapterFactory({ db: testDb.db, clientAdapter: () => clientAdapter });
    // Access tokens are 43 characters, refresh tokens 44, client-credentials tokens 45 (src/oidc/opaque-tokens.ts).
    const stored = async (model: string, length: number) => {
      const id = await save(factory(model), tokenPayload(model, { jti: model[0]!.repeat(length) }));
      return (await factory(model).find(id)) !== undefined;
    };
    expect({ refresh43: await stored('RefreshToken', 43), refresh45: await stored('RefreshToken', 45) }).toEqual({ refresh43: false, refresh45: false });
    expect({ access44: await stored('AccessToken', 44), access45: await stored('AccessToken', 45) }).toEqual({ access44: false, access45: false });
    expect(await stored('ClientCredentials', 44)).toBe(false);
    expect({ refresh: await stored('RefreshToken', 44), access: await stored('AccessToken', 43), clientCredentials: await stored('ClientCredentials', 45) }).toEqual({
      refresh: true,
      access: true,
      clientCredentials: true,
    });
    // The length client-credentials tokens had before: still found, as an older instance issues them during an upgrade.
    expect(await stored('ClientCredentials', 43)).toBe(true);
  });

  (redisUrl ? test : test.skip)('with Redis, short-lived models go to Redis and durable ones to SQL', async () => {
    const redis = testRedis as TestRedis;
    const factory = createAdapterFactory({
      db: testDb.db,
      redis: redis.redis,
      redisKeyPrefix: redis.keyPrefix,
      clientAdapter: () => clientAdapter,
    });
    const durable = ['Grant', 'RefreshToken', 'InitialAccessToken', 'RegistrationAccessToken'];
    const shortLived = ['Session', 'Interaction', 'AuthorizationCode', 'AccessToken', 'ClientCredentials', 'DeviceCode'];
    for (const model of [...durable, ...shortLived]) {
      const id = await save(factory(model), tokenPayload(model));
      const inSql = Boolean(await testDb.db('oidc_models').where({ model, id: storageId(id) }).first());
      const inRedis = (await redis.redis.exists(`${redis.keyPrefix}${model}:record:${storageId(id)}`)) === 1;
      expect({ model, inSql, inRedis }).toEqual({ model, inSql: durable.includes(model), inRedis: shortLived.includes(model) });
    }
  });
});
