/**
 * The batched audit log on PostgreSQL and PGlite: large batches, hostile strings, and a failing database.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { AuditLog } from '../../src/audit/audit-log.js';
import { createTestDatabase, type SqlKind, sqlKinds, type TestDatabase } from '../support/environment.js';

describe.each(sqlKinds)('AuditLog on %s', (kind: SqlKind) => {
  let testDb: TestDatabase;
  let log: AuditLog;
  let logged: string[];
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  beforeEach(async () => {
    await testDb.db('audit_events').del();
    logged = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logged.push(chunk.toString());
        done();
      },
    });
    // A long interval: the tests flush themselves.
    log = new AuditLog(testDb.db, pino(sink), { flushIntervalMs: 3_600_000 });
  });
  afterEach(() => log.close());
  afterAll(() => testDb.drop());

  const count = async () => Number((await testDb.db('audit_events').count({ n: '*' }))[0]?.n);

  test('a batch larger than the 65,535 bind parameters of one statement is written whole', async () => {
    for (let index = 0; index < 8000; index++) {
      log.record({ type: 'token_issued', outcome: 'success', clientId: `client-${index}`, detail: { grantType: 'client_credentials' } });
    }
    await log.flush();
    expect(await count()).toBe(8000);
    const row = await testDb.db('audit_events').where({ client_id: 'client-7999' }).first();
    expect(row).toMatchObject({ type: 'token_issued', outcome: 'success', detail: { grantType: 'client_credentials' } });
    expect(row.at).toBeInstanceOf(Date);
  });

  test('NUL characters, which Postgres cannot store, are dropped instead of failing the batch; secrets never get in', async () => {
    log.record({ type: 'sign_in', outcome: 'failure', userAgent: 'agent\u0000x', detail: { email: 'a\u0000@example.test', password: 'hunter2' } });
    log.record({ type: 'sign_in', outcome: 'success', accountId: 'account-1' });
    await log.flush();
    const rows = await testDb.db('audit_events').orderBy('id');
    expect(rows.map((row) => row.type)).toEqual(['sign_in', 'sign_in']);
    expect(rows[0]).toMatchObject({ user_agent: 'agentx', detail: { email: 'a@example.test' } });
    expect(rows[0].detail).not.toHaveProperty('password');
  });

  test('a failed write is retried once with the next batch, then dropped, and each is logged', async () => {
    await testDb.db.raw('alter table audit_events rename to audit_events_away');
    try {
      log.record({ type: 'first', outcome: 'success' });
      await log.flush(); // fails: kept for one retry
      expect(log.stats).toEqual({ buffered: 1, dropped: 0, failedWrites: 1 });
      log.record({ type: 'second', outcome: 'success' });
      await log.flush(); // fails again: "first" is dropped, "second" kept
      expect(log.stats).toEqual({ buffered: 1, dropped: 1, failedWrites: 2 });
    } finally {
      await testDb.db.raw('alter table audit_events_away rename to audit_events');
    }
    await log.flush();
    expect(log.stats).toEqual({ buffered: 0, dropped: 1, failedWrites: 2 });
    expect((await testDb.db('audit_events')).map((row) => row.type)).toEqual(['second']);
    expect(logged.filter((line) => line.includes('could not be written'))).toHaveLength(2);
    expect(logged.some((line) => line.includes('"dropped":1'))).toBe(true);
  });

  test('AUDIT_TO_LOG: each event is also one log line, whatever the log level, once even when its batch is retried; secrets never get in', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const mirrored = new AuditLog(testDb.db, pino({ level: 'silent' }, sink), { flushIntervalMs: 3_600_000, toLog: true });
    try {
      await testDb.db.raw('alter table audit_events rename to audit_events_away');
      try {
        mirrored.record({ type: 'sign_in', outcome: 'failure', ip: '192.0.2.1', requestId: 'r-1', detail: { email: 'ada@example.test', password: 'hunter2', reason: 'bad_credentials' } });
        await mirrored.flush(); // the write fails: kept for its retry
      } finally {
        await testDb.db.raw('alter table audit_events_away rename to audit_events');
      }
      mirrored.record({ type: 'sign_in', outcome: 'success', accountId: 'account-1', clientId: 'app' });
      await mirrored.flush();
    } finally {
      await mirrored.close();
    }
    const audit = lines.filter((line) => line.msg === 'audit').map((line) => line.audit);
    expect(audit).toEqual([
      {
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        type: 'sign_in',
        outcome: 'failure',
        ip: '192.0.2.1',
        requestId: 'r-1',
        detail: { email: 'ada@example.test', reason: 'bad_credentials' },
      },
      { at: expect.any(String), type: 'sign_in', outcome: 'success', accountId: 'account-1', clientId: 'app', detail: {} },
    ]);
    expect(lines.find((line) => line.msg === 'audit')).toMatchObject({ level: 30 });
    expect(JSON.stringify(lines)).not.toContain('hunter2');
    expect((await testDb.db('audit_events')).map((row) => row.outcome)).toEqual(['failure', 'success']);
  });

  test('while nothing can be written, a full buffer keeps the newest 10,000 events and counts what it let go', () => {
    for (let index = 0; index < 10_001; index++) log.record({ type: `event-${index}`, outcome: 'success' });
    expect(log.stats).toEqual({ buffered: 9_001, dropped: 1_000, failedWrites: 0 });
  });
});
