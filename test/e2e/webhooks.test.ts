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
import { scrapeMetrics } from '../support/metrics.js';
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
let server: TestServer;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: answer });
      res.writeHead(answer).end();
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

test('an endpoint that fails holds the queue; the event is delivered when it is back, once, and the rest follow in order', async () => {
  const metrics = await scrapeMetrics(server);
  answer = 503;
  const held = await createUser(server);
  await until(() => received.some((request) => request.status === 503));
  const next = await createUser(server);
  answer = 204;
  // Tried again 5 s after the failure.
  await until(() => deliveredFor(next.userId).length > 0);
  expect([...deliveredFor(held.userId), ...deliveredFor(next.userId)].map((event) => event.type)).toEqual(['user_created', 'user_created']);
  const order = delivered().map((event) => event.data.accountId);
  expect(order.indexOf(held.userId)).toBeLessThan(order.indexOf(next.userId));
  const grown = await metrics.since();
  expect(grown('authz_webhook_deliveries_total{outcome="failed"}')).toBeGreaterThanOrEqual(1);
  expect(grown('authz_webhook_deliveries_total{outcome="delivered"}')).toBeGreaterThanOrEqual(2);
  expect(await server.services.db('webhook_endpoints').where({ url: receiverUrl }).first()).toMatchObject({ failures: 0, retry_at: null, last_error: null });
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
