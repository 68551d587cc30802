/**
 * Webhooks as an integrator meets them: an endpoint of theirs receives the audit events it asked for (WEBHOOK_EVENTS),
 * each signed as Standard Webhooks sign them and checked here with that specification's own library
 * (`standardwebhooks`), in the order they happened, once each even with two instances sending; an endpoint that
 * fails holds the queue, and the event is delivered when it is back, nothing skipped. Over HTTP, on PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { adminApiOf } from '../support/admin-api.js';
import { scrapeMetrics } from '../support/metrics.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { createUser } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
const CURRENT = secret();
const PREVIOUS = secret();

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

let receiver: Server;
let receiverUrl: string;
/** Every request the endpoint got, answered or refused. */
const received: Received[] = [];
let answer = 204;
/** Refused (400) whatever `answer` says: bodies holding this, as an endpoint that can never take one event. */
let poison: string | undefined;
let server: TestServer;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = poison && body.includes(poison) ? 400 : answer;
      received.push({ headers: req.headers, body, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  server = await startTestServer({ env: { WEBHOOK_URL: receiverUrl, WEBHOOK_SECRET: `${CURRENT},${PREVIOUS}`, WEBHOOK_EVENTS: 'user_*,client_created' } });
  // The endpoint starts from the events written once it is set: wait for its first run to set it.
  await until(async () => (await server.services.db('webhook_endpoints').where({ url: receiverUrl }).first()) !== undefined);
});
afterAll(async () => {
  await server.close();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  for (const started = Date.now(); !(await condition()); ) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The events the endpoint took (a 2xx), each verified with the current secret. */
function delivered(): { id: string; type: string; data: Record<string, unknown> }[] {
  const verifier = new Webhook(CURRENT);
  return received
    .filter((request) => request.status < 300)
    .map((request) => ({ id: String(request.headers['webhook-id']), ...(verifier.verify(request.body, request.headers as Record<string, string>) as { type: string; data: Record<string, unknown> }) }));
}

const deliveredFor = (accountId: string) => delivered().filter((event) => event.data.accountId === accountId);

test('the events asked for arrive signed (by each secret during a rotation), in order, with the audit record as data', async () => {
  const first = await createUser(server);
  await server.services.users.setRoles(first.email, ['editor']);
  const second = await createUser(server);
  const { client } = await server.services.clients.create({ type: 'service', name: 'Nightly job' });
  // Not asked for: a failed sign-in is audited as sign_in, which WEBHOOK_EVENTS leaves out.
  await server.services.users.verifyPassword(first.email, 'wrong password');
  await until(() => delivered().some((event) => event.type === 'client_created' && event.data.clientId === client.clientId));

  const ours = delivered().filter((event) => [first.userId, second.userId].includes(String(event.data.accountId)) || event.data.clientId === client.clientId);
  expect(ours.map((event) => [event.type, event.data.accountId ?? event.data.clientId])).toEqual([
    ['user_created', first.userId],
    ['user_roles_changed', first.userId],
    ['user_created', second.userId],
    ['client_created', client.clientId],
  ]);
  expect(delivered().every((event) => event.type.startsWith('user_') || event.type === 'client_created')).toBe(true);
  const [created] = ours;
  expect(created).toMatchObject({ id: `evt_${created?.data.id}`, data: { type: 'user_created', outcome: 'success', accountId: first.userId, at: expect.any(String), detail: expect.any(Object) } });

  // Both secrets sign; a receiver that knows either accepts, one that knows neither refuses.
  const request = received.find((candidate) => candidate.headers['webhook-id'] === created?.id) as Received;
  expect(String(request.headers['webhook-signature']).split(' ')).toHaveLength(2);
  expect(() => new Webhook(PREVIOUS).verify(request.body, request.headers as Record<string, string>)).not.toThrow();
  expect(() => new Webhook(secret()).verify(request.body, request.headers as Record<string, string>)).toThrow();
  expect(request.headers['content-type']).toBe('application/json');
});

/** `authz webhooks …` against the test server's stores and settings. */
const cli = (...args: string[]) => runToEnd('src/cli.ts', ['webhooks', ...args], cleanEnvironment({ ...server.env }));

test('an endpoint that fails holds the queue (authz webhooks status says why); the event is delivered when it is back, once, and the rest follow in order', async () => {
  const metrics = await scrapeMetrics(server);
  answer = 503;
  const held = await createUser(server);
  await until(() => received.some((request) => request.status === 503));
  const next = await createUser(server);
  const status = await cli('status', '--json');
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ url: receiverUrl, failures: 1, lastError: 'the endpoint answered 503', retryAt: expect.any(String) });
  expect(JSON.parse(status.stdout).pending).toBeGreaterThanOrEqual(2);
  answer = 204;
  // Tried again at the next run, not 5 s (and more) after the failure.
  expect(await cli('retry')).toMatchObject({ code: 0, stdout: 'the held event is tried again within a second\n' });
  await until(() => deliveredFor(next.userId).length > 0);
  expect([...deliveredFor(held.userId), ...deliveredFor(next.userId)].map((event) => event.type)).toEqual(['user_created', 'user_created']);
  const order = delivered().map((event) => event.data.accountId);
  expect(order.indexOf(held.userId)).toBeLessThan(order.indexOf(next.userId));
  const grown = await metrics.since();
  expect(grown('authz_webhook_deliveries_total{outcome="failed"}')).toBeGreaterThanOrEqual(1);
  expect(grown('authz_webhook_deliveries_total{outcome="delivered"}')).toBeGreaterThanOrEqual(2);
  expect(await server.services.db('webhook_endpoints').where({ url: receiverUrl }).first()).toMatchObject({ failures: 0, retry_at: null, last_error: null });
});

test('an event the endpoint never takes holds the queue until an administrator skips it (audited); the rest follow', async () => {
  const refused = await createUser(server);
  poison = refused.userId;
  try {
    await until(() => received.some((request) => request.status === 400));
    const after = await createUser(server);
    const skipped = await cli('skip');
    expect(skipped.stdout).toMatch(/^skipped event \d+ \(user_created\); the next are sent from the next run\n$/);
    await until(() => deliveredFor(after.userId).length > 0);
    expect(deliveredFor(refused.userId)).toEqual([]);
    expect((await cli('skip')).stdout).toBe('no event is waiting\n');
    const unset = await runToEnd('src/cli.ts', ['webhooks', 'status'], cleanEnvironment({ ...server.env, WEBHOOK_URL: '', WEBHOOK_SECRET: '', WEBHOOK_EVENTS: '' }));
    expect(unset).toMatchObject({ code: 1, stderr: 'authz: WEBHOOK_URL is not set: no audit events are sent\n' });
    // The admin API skips the same way, audited as its own.
    const admin = await adminApiOf(server);
    const refusedAgain = await createUser(server);
    poison = refusedAgain.userId;
    await until(() => received.some((request) => request.status === 400 && request.body.includes(refusedAgain.userId)));
    const byApi = await admin.call('POST', '/webhook/skip');
    expect(byApi).toMatchObject({ status: 200, body: { skipped: { id: expect.any(String), type: 'user_created' } } });
    await server.services.audit.flush();
    expect(await server.services.db('audit_events').where({ type: 'webhook_event_skipped' }).whereRaw("detail->>'by' = 'admin-api'").first()).toBeDefined();
    await server.services.audit.flush();
    const audited = await server.services.db('audit_events').where({ type: 'webhook_event_skipped' }).first();
    expect(audited).toMatchObject({ outcome: 'success', detail: { by: 'cli', eventType: 'user_created', event: expect.any(String) } });
  } finally {
    poison = undefined;
  }
});

test('without WEBHOOK_URL the admin API says so (404)', async () => {
  const off = await startTestServer({ instanceOf: server, env: { WEBHOOK_URL: '', WEBHOOK_SECRET: '', WEBHOOK_EVENTS: '' } });
  try {
    expect(await (await adminApiOf(off)).call('GET', '/webhook')).toEqual({ status: 404, body: { error: 'not_found', error_description: 'WEBHOOK_URL is not set: no audit events are sent' } });
  } finally {
    await off.close();
  }
});

test('two instances sending at once deliver each event once, each instance’s in the order it wrote them', async () => {
  const other = await startTestServer({ instanceOf: server });
  try {
    const made = new Map<TestServer, string[]>([
      [server, []],
      [other, []],
    ]);
    for (const [index, at] of [server, other, server, other, other, server].entries()) {
      made.get(at)?.push((await at.services.users.create({ email: `hook${index}.${Date.now()}@example.test`, password: 'correct horse battery staple' })).id);
    }
    const users = [...made.values()].flat();
    await until(() => users.every((id) => deliveredFor(id).length > 0));
    // A moment more for anything sent twice to show.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    // Each instance writes its audit events in batches: across instances the order is that of their commits.
    const order = delivered().map((event) => String(event.data.accountId));
    for (const ids of made.values()) expect(order.filter((id) => ids.includes(id))).toEqual(ids);
    const eventIds = delivered().map((event) => event.id);
    expect(new Set(eventIds).size).toBe(eventIds.length);
  } finally {
    await other.close();
  }
});

test('on the embedded database without Redis (the newcomer’s default) events are delivered too', async () => {
  const embedded = await startTestServer({ sql: 'pglite', redis: false, env: { WEBHOOK_URL: receiverUrl, WEBHOOK_SECRET: CURRENT } });
  try {
    await until(async () => (await embedded.services.db('webhook_endpoints').first()) !== undefined);
    const user = await createUser(embedded);
    await until(() => deliveredFor(user.userId).length > 0);
    expect(deliveredFor(user.userId).map((event) => event.type)).toEqual(['user_created']);
  } finally {
    await embedded.close();
  }
});
