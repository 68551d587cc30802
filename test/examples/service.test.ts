/**
 * examples/service end to end: a client-credentials TokenSource against the real server and the example API.
 * The token is cached until 30 s before it expires (one /token request however many calls), a token for
 * another API is refused by this one, and `src/main.ts` runs as a real process.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EXPIRY_MARGIN_MS, TokenSource } from '../../examples/service/src/client.js';
import { createResourceServer } from '../../examples/resource-server/src/app.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { API, createServiceClient } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

const OTHER_API = 'https://reports.example.test';
const TTL = 300;

let server: TestServer;
let api: Server;
let apiUrl: string;
let client: { clientId: string; secret: string };

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read', 'messages:write'], isDefault: true, accessTokenTtl: TTL });
  await server.services.apis.create({ indicator: OTHER_API, name: 'Reports', scopes: ['reports:read'] });
  const app = await createResourceServer({ issuer: server.issuer, audience: API });
  api = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => api.once('listening', resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  client = await createServiceClient(server, { scope: 'messages:read' });
});

afterAll(async () => {
  api?.closeAllConnections();
  await new Promise((resolve) => api?.close(resolve));
  await server?.close();
});

/** A TokenSource whose requests to the token endpoint are counted. */
function countingSource(options: { resource?: string; now?: () => number } = {}) {
  const counter = { tokenRequests: 0 };
  const source = new TokenSource({
    issuer: server.issuer,
    clientId: client.clientId,
    clientSecret: client.secret,
    apiUrl,
    ...options,
    fetch: (url, init) => {
      if (new URL(url).pathname === '/token') counter.tokenRequests += 1;
      return fetch(url, init);
    },
  });
  return { source, counter };
}

describe('examples/service', () => {
  test('calls the API with a client-credentials token, and the second call reuses the cached token', async () => {
    const { source, counter } = countingSource();
    const first = await source.callApi('/messages');
    expect(first.status).toBe(200);
    await expect(first.json()).resolves.toMatchObject({ caller: client.clientId });
    expect(counter.tokenRequests).toBe(1);

    const second = await source.callApi('/messages');
    expect(second.status).toBe(200);
    expect(counter.tokenRequests).toBe(1);
  });

  test('concurrent calls share one token request', async () => {
    const { source, counter } = countingSource();
    const responses = await Promise.all(Array.from({ length: 5 }, () => source.callApi('/messages')));
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    expect(counter.tokenRequests).toBe(1);
  });

  test('a new token is fetched 30 seconds before the cached one expires, not earlier', async () => {
    let now = Date.now();
    const { source, counter } = countingSource({ now: () => now });
    const start = now;
    const token = await source.getToken();
    // openid-client's expiresIn() counts expires_in down on the real clock in whole seconds (299 once a millisecond
    // has passed since the answer, less on a busy machine), so the check is made a few seconds inside the margin.
    now = start + TTL * 1000 - EXPIRY_MARGIN_MS - 5000;
    await expect(source.getToken()).resolves.toBe(token);
    expect(counter.tokenRequests).toBe(1);
    now = start + TTL * 1000 - EXPIRY_MARGIN_MS + 1000;
    await source.getToken();
    expect(counter.tokenRequests).toBe(2);
  });

  test('the API refuses a token issued for another API (after one retry with a fresh token)', async () => {
    const { source, counter } = countingSource({ resource: OTHER_API });
    const response = await source.callApi('/messages');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(counter.tokenRequests).toBe(2);
  });

  test('a wrong secret fails at the token endpoint with invalid_client', async () => {
    const source = new TokenSource({ issuer: server.issuer, clientId: client.clientId, clientSecret: 'wrong', apiUrl });
    // A 401 with a WWW-Authenticate challenge (RFC 6749 §5.2: client_secret_basic failed).
    await expect(source.getToken()).rejects.toMatchObject({
      status: 401,
      cause: [expect.objectContaining({ scheme: 'basic', parameters: expect.objectContaining({ error: 'invalid_client' }) })],
    });
  });

  test('src/main.ts runs the job once from its environment', async () => {
    const env = cleanEnvironment({ ISSUER: server.issuer, CLIENT_ID: client.clientId, CLIENT_SECRET: client.secret, API_URL: apiUrl });
    const result = await runToEnd('examples/service/src/main.ts', [], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^200 /);
    expect(result.stdout).toContain('"text": "hello"');
  });
});
