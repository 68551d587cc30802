/**
 * Running it in production: probes, metrics, two instances sharing Postgres and Redis with no sticky sessions,
 * and a SIGTERM under load that loses no request and no audit event.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { createServer, listen } from '../../src/app.js';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { closeDatabase, openDatabase } from '../../src/store/database.js';
import { storageId } from '../../src/store/storage-id.js';
import { createTestRedis, describeWithServers, postgresUrl, redisUrl, uniqueName } from '../support/environment.js';
import { cleanEnvironment, freePort, startUntil, stop, waitFor } from '../support/process.js';
import { REDIRECT_URI, createServiceClient, createUser, createWebClient, discover, openLoginPage, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

describe('probes and metrics', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  test('/healthz says alive; /readyz checks the stores and keys, and turns 503 once shutdown begins', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { checks: Record<string, string> };
    expect(body.checks).toMatchObject({ database: 'ok', keys: 'ok', shutdown: 'ok' });
    if (redisUrl) expect(body.checks.redis).toBe('ok');

    server.server.beginShutdown();
    const draining = await fetch(`${server.url}/readyz`);
    expect(draining.status).toBe(503);
    expect(await draining.json()).toMatchObject({ status: 'not ready', checks: { shutdown: 'failing: shutting down' } });
  });

  test('/readyz says at once that Redis is not connected, within the 1 s a Kubernetes probe waits by default', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'authz-no-redis-'));
    const config = loadConfig({
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      DATA_DIR: path.join(scratch, 'data'),
      KEYS_DIR: path.join(scratch, 'keys'),
      BCRYPT_COST: '4',
    });
    config.database.embeddedDir = ':memory:';
    const away = await createServer(config, createLogger('silent', false));
    const http = await listen(away.handleRequest, 0, '127.0.0.1');
    try {
      const startedAt = Date.now();
      const ready = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/readyz`);
      expect(Date.now() - startedAt).toBeLessThan(1000);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ checks: { database: 'ok', redis: expect.stringMatching(/^failing: not connected \(\w+\)$/) } });
    } finally {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await away.close();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  test('/metrics exposes traffic, tokens by grant type and client, sign-ins, store latency, key states, the token cache', async () => {
    const service = await createServiceClient(server);
    await oidc.clientCredentialsGrant(await discover(server, service.clientId, service.secret));
    const user = await createUser(server);
    const web = await createWebClient(server, { firstParty: true });
    const onWeb = await discover(server, web.clientId, web.secret);
    const { tokens } = await signInAndRedeem(onWeb, user);
    await oidc.tokenIntrospection(onWeb, tokens.access_token);

    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await response.text();
    expect(text).toContain(`authz_tokens_issued_total{grant_type="client_credentials",client_id="${service.clientId}"} 1`);
    expect(text).toContain(`authz_tokens_issued_total{grant_type="authorization_code",client_id="${web.clientId}"} 1`);
    expect(text).toMatch(/authz_sign_ins_total\{outcome="success"\} 1/);
    expect(text).toMatch(/authz_http_requests_total\{route="token",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/authz_http_request_duration_seconds_bucket\{le="[^"]+",route="discovery",method="GET"\} \d+/);
    expect(text).toMatch(/authz_store_operation_duration_seconds_count\{store="(postgres|pglite)",operation="upsert"\} \d+/);
    expect(text).toContain('authz_signing_keys{alg="RS256",state="current"} 1');
    if (redisUrl) {
      // The introspection above read the access token's record from Redis (src/store/token-record-cache.ts).
      expect(Number(text.match(/authz_token_cache_lookups_total\{result="miss"\} (\d+)/)?.[1])).toBeGreaterThanOrEqual(1);
      expect(text).toMatch(/authz_token_cache_lookups_total\{result="hit"\} \d+/);
      expect(text).toMatch(/authz_token_cache_entries \d+/);
      expect(text).toMatch(/authz_token_cache_live [01]/);
    }
    expect(text).toMatch(/authz_process_resident_memory_bytes \d+/);
    // Paths never become labels: a flood of random URLs cannot grow the number of series.
    await fetch(`${server.url}/no/such/${Math.random()}`);
    expect(await (await fetch(`${server.url}/metrics`)).text()).not.toMatch(/no\/such/);
  });
});

describeWithServers('two instances on one Postgres and Redis, no sticky sessions', () => {
  let first: TestServer;
  let second: TestServer;
  beforeAll(async () => {
    first = await startTestServer({ env: { CLIENT_CACHE_TTL_MS: '300', CLIENT_AUTH_MAX_FAILURES: '3' } });
    second = await startTestServer({ instanceOf: first });
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  test('a login started on one instance finishes on the other', async () => {
    const user = await createUser(first);
    const web = await createWebClient(first, { firstParty: true });
    const { agent, page, form } = await openLoginPage(first, web.clientId);
    // The form is posted to the other instance, and every redirect after it is followed there too.
    const onSecond = { ...page, url: page.url.replace(first.url, second.url) };
    const submitted = await agent.submit(onSecond, form, { email: user.email, password: 'correct horse battery staple' }, second.url);
    // The provider redirects to its issuer URL (the first instance's address here): resume on the second.
    const resume = submitted.redirectedTo?.href.replace(first.url, second.url) ?? '';
    expect(resume).toContain('/auth/');
    const done = await agent.follow(resume, second.url);
    expect(done.redirectedTo?.origin).toBe(new URL(REDIRECT_URI).origin);
    expect(done.redirectedTo?.searchParams.get('code')).toEqual(expect.any(String));
  });

  /** A user signed in through the first instance, and the same client configured against either instance. */
  async function signedInOnBoth() {
    const user = await createUser(first);
    const web = await createWebClient(first, { firstParty: true });
    const onFirst = await discover(first, web.clientId, web.secret);
    const { tokens } = await signInAndRedeem(onFirst, user);
    const onSecond = await oidc.discovery(new URL(first.issuer), web.clientId, web.secret, undefined, {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: (url: string, options: RequestInit) => fetch(url.replace(first.issuer, second.url), options),
    });
    return { user, tokens, onFirst, onSecond };
  }

  test('a token issued by one is introspected and revoked on the other', async () => {
    const { tokens, onFirst, onSecond } = await signedInOnBoth();
    expect((await oidc.tokenIntrospection(onSecond, tokens.access_token)).active).toBe(true);
    await oidc.tokenRevocation(onSecond, tokens.access_token);
    expect((await oidc.tokenIntrospection(onFirst, tokens.access_token)).active).toBe(false);
  });

  test('a token the other instance keeps in memory is inactive there as soon as one instance revoked it', async () => {
    const { user, tokens, onFirst, onSecond } = await signedInOnBoth();
    // The second instance reads the token and, once its broadcast is live, keeps a copy (src/store/token-record-cache.ts).
    const recordKey = `${first.config.redis?.keyPrefix}AccessToken:record:${storageId(tokens.access_token)}`;
    await waitFor(async () => {
      expect((await oidc.tokenIntrospection(onSecond, tokens.access_token)).active).toBe(true);
      return second.services.tokenCache?.get(recordKey) !== undefined;
    }, 'the second instance to keep the token');

    await oidc.tokenRevocation(onFirst, tokens.access_token);
    await waitFor(async () => !(await oidc.tokenIntrospection(onSecond, tokens.access_token)).active, 'the revocation to reach the second instance', 500);
    await expect(oidc.fetchUserInfo(onSecond, tokens.access_token, user.userId)).rejects.toBeDefined();
  });

  /** A client-credentials request to `instance`, authenticated with HTTP Basic. */
  const clientCredentials = (instance: TestServer, clientId: string, secret: string) =>
    fetch(`${instance.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });

  test('a client disabled through one instance is refused by the other within the client-cache TTL', async () => {
    const service = await createServiceClient(first);
    const token = (instance: TestServer) => clientCredentials(instance, service.clientId, service.secret);
    expect((await token(second)).status).toBe(200);
    await first.services.clients.disable(service.clientId);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await token(second)).status).toBe(401);
  });

  test('a client locked for failed authentications at one instance is refused by the other, even with its secret', async () => {
    const service = await createServiceClient(first);
    const token = (instance: TestServer, secret: string) => clientCredentials(instance, service.clientId, secret);
    // The second instance has just seen the client unlocked, and believes so for up to a second.
    expect((await token(second, service.secret)).status).toBe(200);
    for (let attempt = 1; attempt <= 3; attempt++) expect((await token(first, 'wrong-secret')).status).toBe(401);
    expect((await token(first, service.secret)).status).toBe(429);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const refused = await token(second, service.secret);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});


// Workers need PostgreSQL (the embedded database admits one process).
const workerCounts = postgresUrl ? [1, 2] : [1];

describe('graceful shutdown', () => {
  test.each(workerCounts)('SIGTERM under load with WEB_CONCURRENCY=%i: every request in flight is answered, the instance exits 0, no audit event is lost', async (workers) => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'authz-shutdown-'));
    const schema = postgresUrl ? uniqueName('shutdown') : undefined;
    // Its own key prefix, emptied at the end (the tokens issued under load would otherwise wait out their TTL).
    const redis = redisUrl ? await createTestRedis() : undefined;
    try {
      const port = await freePort();
      const env = cleanEnvironment({
        PORT: String(port),
        DATA_DIR: path.join(scratch, 'data'),
        KEYS_DIR: path.join(scratch, 'keys'),
        DATABASE_URL: postgresUrl,
        DATABASE_SCHEMA: schema,
        REDIS_URL: redis?.url,
        REDIS_KEY_PREFIX: redis?.keyPrefix,
        COOKIE_SECRETS: 'shutdown-test-cookie-secret-0123456789abcdef',
        CLIENT_SECRET_PEPPERS: 'p1:shutdown-test-pepper-0123456789abcdef',
        LOG_LEVEL: 'warn',
        SHUTDOWN_DELAY: '2',
        WEB_CONCURRENCY: String(workers),
      });
      const databaseOptions = { url: postgresUrl, schema, embeddedDir: path.join(scratch, 'data', 'pglite') };
      let db = await openDatabase(databaseOptions);
      const { ClientRepository } = await import('../../src/clients/clients.js');
      const { migrate } = await import('../../src/store/database.js');
      await migrate(db);
      const { client, secret } = await new ClientRepository(db, { peppers: [{ kid: 'p1', secret: 'shutdown-test-pepper-0123456789abcdef' }] }).create({
        type: 'service',
        name: 'load',
      });
      await closeDatabase(db);

      const running = await startUntil('src/main.ts', env, /authz is serving/, 60_000);
      const issuer = `http://localhost:${port}`;
      const basic = `Basic ${Buffer.from(`${client.clientId}:${secret}`).toString('base64')}`;
      const request = () =>
        fetch(`${issuer}/token`, {
          method: 'POST',
          headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials',
        }).then(
          (response) => response.status,
          () => 0,
        );
      // Load from 8 clients until the "load balancer" sees /readyz fail, as a real one would, then stop sending.
      let balancerRoutes = true;
      const statuses: number[] = [];
      const loadClient = async () => {
        while (balancerRoutes) statuses.push(await request());
      };
      const load = Promise.all(Array.from({ length: 8 }, loadClient));
      // Under load means answers flowing: wait for some (a fixed 300 ms saw too few on a busy machine), then SIGTERM.
      for (const started = Date.now(); statuses.length < 24 && Date.now() - started < 20_000; ) await new Promise((resolve) => setTimeout(resolve, 20));
      const exited = stop(running.child);
      while ((await fetch(`${issuer}/readyz`).then((response) => response.status, () => 0)) === 200) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // Draining, every answer closes its connection: a client does not reuse one as the idle ones are closed. (With
      // two workers the one that answers may get its SIGTERM a moment after the other: asked again until it has.)
      const closes = async () => (await fetch(`${issuer}/readyz`)).headers.get('connection') === 'close';
      let closing = await closes();
      for (let tries = 0; !closing && tries < 20; tries++) closing = await closes();
      expect(closing).toBe(true);
      balancerRoutes = false;
      await load;
      expect(await exited).toBe(0);
      expect(statuses.length).toBeGreaterThan(20);
      expect(statuses.filter((status) => status !== 200)).toEqual([]);

      db = await openDatabase(databaseOptions);
      try {
        const issued = await queryAuditEvents(db, { type: 'token_issued', clientId: client.clientId, limit: 1000 });
        expect(issued).toHaveLength(statuses.length);
        if (schema) await db.raw('drop schema if exists ?? cascade', [schema]);
      } finally {
        await closeDatabase(db);
      }
    } finally {
      // Also when an expectation failed: a Redis connection left open keeps jest from exiting.
      await redis?.drop();
      await rm(scratch, { recursive: true, force: true });
    }
  }, 120_000);

  test('a second signal during SHUTDOWN_DELAY closes at once, still cleanly (flushed, pools closed, exit 0)', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'authz-second-signal-'));
    const port = await freePort();
    const env = cleanEnvironment({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: path.join(scratch, 'data'),
      KEYS_DIR: path.join(scratch, 'keys'),
      SHUTDOWN_DELAY: '120',
    });
    const running = await startUntil('src/main.ts', env, /authz is serving/, 60_000);
    let stdout = '';
    running.child.stdout.on('data', (chunk) => (stdout += chunk));
    try {
      const exited = new Promise<number | null>((resolve) => running.child.once('exit', resolve));
      running.child.kill('SIGINT');
      // The first Ctrl-C: readiness off, waiting out the delay for the load balancer.
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 503, '/readyz to answer 503');
      running.child.kill('SIGINT');
      expect(await exited).toBe(0);
      const messages = stdout.trim().split('\n').map((line) => (JSON.parse(line) as { msg: string }).msg);
      expect(messages).toEqual(expect.arrayContaining(['shutting down', 'closing now, without waiting for the rest of the shutdown delay', 'shut down']));
    } finally {
      running.child.kill('SIGKILL');
      await rm(scratch, { recursive: true, force: true });
    }
  }, 60_000);

  test('a request that never finishes is cut off after 10 s, and the log says so; the stores still close in order', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'authz-stuck-'));
    const port = await freePort();
    const env = cleanEnvironment({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: path.join(scratch, 'data'), KEYS_DIR: path.join(scratch, 'keys') });
    const running = await startUntil('src/main.ts', env, /authz is serving/, 60_000);
    let stdout = '';
    running.child.stdout.on('data', (chunk) => (stdout += chunk));
    // A client that announces a body and sends it a byte at a time, slower than the server will wait.
    const slow = connect(port, '127.0.0.1');
    await new Promise((resolve) => slow.once('connect', resolve));
    slow.write('POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=');
    const trickle = setInterval(() => slow.write('a'), 500);
    slow.on('error', () => undefined);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const startedAt = Date.now();
      const code = await stop(running.child);
      expect(code).toBe(1);
      expect(Date.now() - startedAt).toBeLessThan(15_000);
      const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; connections?: number });
      expect(lines.find((line) => /requests still in flight/.test(line.msg))).toMatchObject({ connections: 1 });
      expect(lines.map((line) => line.msg)).toContain('shut down');
    } finally {
      clearInterval(trickle);
      slow.destroy();
      await rm(scratch, { recursive: true, force: true });
    }
  }, 60_000);
});
