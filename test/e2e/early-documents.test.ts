/**
 * Cached discovery and JWKS documents are answered before Koa (src/http/early-documents.ts). Whichever path
 * answers, a client must get the same status, bytes and headers, and operators the same access-log line and
 * metrics. The Koa path is reached here through a second listener on the same server, which shares its cache.
 */
import { type IncomingHttpHeaders, request, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { writeNewKey } from '../../src/keys/signing-keys.js';
import { closeHttp, listenHttp } from '../support/process.js';
import { type TestServer, startTestServer } from '../support/server.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Headers that differ between any two answers by design. */
const PER_ANSWER = new Set(['date', 'x-request-id', 'connection', 'keep-alive']);
const DOCUMENTS = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks'];

let server: TestServer;
let koaOnly: Server;
let koaPort: number;
const accessLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const logDestination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === 'request') accessLines.push(entry);
      }
      done();
    },
  });
  server = await startTestServer({ env: { LOG_LEVEL: 'info' }, logDestination });
  const listening = await listenHttp(server.server.app.callback());
  koaOnly = listening.http;
  koaPort = Number(new URL(listening.url).port);
});
afterAll(async () => {
  await closeHttp(koaOnly);
  await server.close();
});

/** One request to a port, with the Host of the server's issuer whichever port it goes to (the cache is per origin). */
function send(target: TestServer, port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Answer> {
  const host = new URL(target.issuer).host;
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, method, headers: { host, ...headers } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

const portOf = (target: TestServer) => Number(new URL(target.url).port);
const early = (path: string, method?: string, headers?: Record<string, string>) => send(server, portOf(server), path, method, headers);
const throughKoa = (path: string, method?: string, headers?: Record<string, string>) => send(server, koaPort, path, method, headers);

function comparable(answer: Answer): { status: number; headers: [string, unknown][]; body: string } {
  const headers = Object.entries(answer.headers).filter(([name]) => !PER_ANSWER.has(name));
  return { status: answer.status, headers: headers.sort(([a], [b]) => a.localeCompare(b)), body: answer.body };
}

describe.each(DOCUMENTS)('%s', (path) => {
  beforeAll(async () => {
    // Fills the cache through Koa, as the first request after start-up or a key change does.
    expect((await throughKoa(path)).status).toBe(200);
  });

  test.each([
    ['a plain GET', 'GET', {}],
    ['a GET with an Origin', 'GET', { origin: 'https://spa.example.test' }],
    ['a HEAD', 'HEAD', {}],
    ['a GET with a stale If-None-Match', 'GET', { 'if-none-match': '"not-the-etag"' }],
  ] as const)('%s is answered alike by both paths', async (_name, method, headers) => {
    const viaKoa = await throughKoa(path, method, headers);
    const before = await early(path, method, headers);
    expect(viaKoa.status).toBe(200);
    expect(comparable(before)).toEqual(comparable(viaKoa));
    expect(before.headers['content-length']).toBe(String(Buffer.byteLength((await early(path)).body)));
    if (method === 'HEAD') expect(before.body).toBe('');
  });

  test('a matching If-None-Match gets the same 304 from both paths', async () => {
    const etag = (await early(path)).headers.etag as string;
    const viaKoa = await throughKoa(path, 'GET', { 'if-none-match': etag });
    const before = await early(path, 'GET', { 'if-none-match': etag });
    expect(before.status).toBe(304);
    expect(before.body).toBe('');
    expect(comparable(before)).toEqual(comparable(viaKoa));
  });

  test('the answer that filled the cache is the same as the answers from it', async () => {
    const fresh = await startTestServer();
    try {
      const first = await send(fresh, portOf(fresh), path);
      const second = await send(fresh, portOf(fresh), path);
      expect(first.status).toBe(200);
      expect(comparable(second)).toEqual(comparable(first));
    } finally {
      await fresh.close();
    }
  });
});

test('an early answer echoes a safe X-Request-Id and replaces an unsafe one, as Koa does', async () => {
  const path = '/jwks';
  await throughKoa(path);
  for (const send of [early, throughKoa]) {
    expect((await send(path, 'GET', { 'x-request-id': 'trace-42.a:b' })).headers['x-request-id']).toBe('trace-42.a:b');
    const replaced = (await send(path, 'GET', { 'x-request-id': 'no spaces <allowed>' })).headers['x-request-id'];
    expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
  }
});

test('early answers are logged and counted like any other', async () => {
  await throughKoa('/jwks');
  accessLines.length = 0;
  const metricsBefore = await (await fetch(`${server.url}/metrics`)).text();
  const counted = (text: string) => Number(/authz_http_requests_total\{route="jwks",method="GET",status="200"\} (\d+)/.exec(text)?.[1] ?? 0);

  const answer = await early('/jwks', 'GET', { 'x-request-id': 'early-logged' });
  expect(answer.status).toBe(200);
  await new Promise((resolve) => setImmediate(resolve));

  expect(accessLines).toContainEqual(expect.objectContaining({ requestId: 'early-logged', method: 'GET', path: '/jwks', status: 200 }));
  const line = accessLines.find((entry) => entry.requestId === 'early-logged');
  expect(typeof line?.ms).toBe('number');
  expect(counted(await (await fetch(`${server.url}/metrics`)).text())).toBe(counted(metricsBefore) + 1);
});

test('after a key change the early path answers the new JWKS, not the cached one', async () => {
  await throughKoa('/jwks');
  const before = await early('/jwks');
  const { kid } = await writeNewKey(server.config.keys.dir, { activatesAt: new Date(Date.now() + 3600_000) });
  expect(await server.server.reloadKeys()).toBe(true);
  const after = await early('/jwks');
  expect(after.status).toBe(200);
  expect(after.headers.etag).not.toBe(before.headers.etag);
  expect((JSON.parse(after.body) as { keys: { kid: string }[] }).keys.map((key) => key.kid)).toContain(kid);
});
