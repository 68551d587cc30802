/**
 * Production with WEB_CONCURRENCY workers (node:cluster): the workers share the port, start with our memory
 * settings (src/worker-runtime.ts), and one that dies is replaced while the others keep serving; one that cannot
 * start stops the instance; METRICS_PORT answers for all of them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeNewKey } from '../../src/keys/signing-keys.js';
import { workerEnvironment, workerExecArgv } from '../../src/worker-runtime.js';
import { createTestDatabase, createTestRedis, describeWithServers, postgresUrl, type TestDatabase, type TestRedis } from '../support/environment.js';
import { cleanEnvironment, freePort, runToEnd, startUntil, stop, waitFor } from '../support/process.js';

describe('worker runtime settings', () => {
  test('each flag and variable of ours is added unless the operator set it', () => {
    expect(workerExecArgv(['--import', 'tsx'])).toEqual(['--import', 'tsx', '--max-semi-space-size=4', '--heap-growing-percent=30']);
    expect(workerExecArgv(['--heap-growing-percent=80'], '--max-semi-space-size=16')).toEqual(['--heap-growing-percent=80']);
    expect(workerEnvironment({})).toEqual({ MALLOC_ARENA_MAX: '2' });
    expect(workerEnvironment({ MALLOC_ARENA_MAX: '8' })).toEqual({});
  });
});

/** The pids of a process's children, from procfs (Linux). */
async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The status of a GET sent on a new connection, closed after it. */
function statusOnNewConnection(url: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { agent: false, headers: { 'x-forwarded-proto': 'https' } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('error', reject);
  });
}

describeWithServers('production with two workers', () => {
  let scratch: string;
  let database: TestDatabase;
  let redis: TestRedis;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'authz-workers-'));
    database = await createTestDatabase('postgres');
    redis = await createTestRedis();
  });
  afterAll(async () => {
    await database.drop();
    await redis.drop();
    await rm(scratch, { recursive: true, force: true });
  });

  /** Production settings with two workers on `port`, a signing key of its own, and `extra` on top. */
  async function productionEnvironment(port: number, extra: Record<string, string> = {}) {
    const keysDir = await mkdtemp(path.join(scratch, 'keys-'));
    await writeNewKey(keysDir, { activatesAt: new Date(Date.now() - 3600_000) });
    return cleanEnvironment({
      NODE_ENV: 'production',
      ISSUER: 'https://id.workers.test',
      HOST: '127.0.0.1',
      PORT: String(port),
      PROXY: 'true',
      WEB_CONCURRENCY: '2',
      DATABASE_URL: postgresUrl,
      DATABASE_SCHEMA: database.options.schema,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redis.keyPrefix,
      COOKIE_SECRETS: randomBytes(32).toString('base64url'),
      CLIENT_SECRET_PEPPERS: `w1:${randomBytes(32).toString('base64url')}`,
      KEYS_DIR: keysDir,
      LOG_LEVEL: 'warn',
      ...extra,
    });
  }

  test('the workers share the port with our runtime settings, and a dead one is replaced', async () => {
    const port = await freePort();
    const env = await productionEnvironment(port);
    delete env.MALLOC_ARENA_MAX; // so that ours is the one the workers get
    const { child } = await startUntil('src/main.ts', env, /authz is serving/, 60_000);
    const discovery = () => fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`, { headers: { 'x-forwarded-proto': 'https' } });
    try {
      const workers = await waitFor(async () => {
        const pids = await childPids(child.pid!);
        return pids.length === 2 ? pids : undefined;
      }, 'two workers', 30_000);
      for (const pid of workers) {
        const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
        expect(argv).toEqual(expect.arrayContaining(['--max-semi-space-size=4', '--heap-growing-percent=30']));
        expect((await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0')).toContain('MALLOC_ARENA_MAX=2');
      }
      expect((await discovery()).status).toBe(200);

      // The first worker printed the banner once it was listening; the second may still be starting, and with
      // no listening worker left the primary would close the port. So the second one is killed.
      const [first, second] = [...workers].sort((a, b) => a - b) as [number, number];
      process.kill(second, 'SIGKILL');
      const replaced = await waitFor(async () => {
        const pids = await childPids(child.pid!);
        return pids.length === 2 && !pids.includes(second) ? pids : undefined;
      }, 'a replacement worker', 30_000);
      expect(replaced).toContain(first);
      // The replacement listens once it has built its server; until then the surviving worker answers.
      for (let attempt = 0; attempt < 5; attempt++) expect((await discovery()).status).toBe(200);
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });

  test('every line on stdout is JSON, the start included, and the start is written at LOG_LEVEL=warn too', async () => {
    const port = await freePort();
    const { child, stdout } = await startUntil('src/main.ts', await productionEnvironment(port, { WEB_CONCURRENCY: '1' }), /authz is serving/, 60_000);
    try {
      const lines = stdout.trim().split('\n');
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
      expect(JSON.parse(lines.at(-1) ?? '')).toMatchObject({
        level: 30,
        msg: 'authz is serving https://id.workers.test',
        issuer: 'https://id.workers.test',
        discovery: 'https://id.workers.test/.well-known/openid-configuration',
        database: 'PostgreSQL (DATABASE_URL)',
        sessions: 'Redis (REDIS_URL)',
      });
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });

  test('a worker that dies while the instance drains is not replaced, and the instance exits 1', async () => {
    const port = await freePort();
    const { child } = await startUntil('src/main.ts', await productionEnvironment(port, { SHUTDOWN_DELAY: '3' }), /authz is serving/, 60_000);
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const workers = await waitFor(async () => {
      const pids = await childPids(child.pid!);
      return pids.length === 2 ? pids : undefined;
    }, 'two workers', 30_000);
    // The first worker (the lower pid) printed the banner once it was listening; the second may still be starting,
    // and a SIGTERM before its handlers are set ends it at once. So the first one is the one killed in the drain.
    const [first] = [...workers].sort((a, b) => a - b) as [number];
    const exited = stop(child);
    // Inside the drain (SHUTDOWN_DELAY), where a worker could still be holding audit events it has not written.
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.kill(first, 'SIGKILL');
    expect(await exited).toBe(1);
    expect(stderr).not.toMatch(/starting another/);
  });

  test('a worker that cannot start stops the server, instead of being replaced over and over', async () => {
    const keysDir = await mkdtemp(path.join(scratch, 'broken-keys-'));
    await writeFile(path.join(keysDir, '20260101T000000Z.pem'), 'not a key');
    const { code, stderr } = await runToEnd('src/main.ts', [], await productionEnvironment(await freePort(), { KEYS_DIR: keysDir }));
    expect(code).toBe(1);
    expect(stderr).toMatch(/refusing to start: .*20260101T000000Z\.pem: is not a PEM private key/);
    expect(stderr).toMatch(/a worker exited before the server could start \(1\); stopping/);
    expect(stderr).not.toMatch(/starting another/);
  });

  test('METRICS_PORT answers for every worker at once, to a scraper with METRICS_TOKEN', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const token = 'metrics-scraper-token-0123456789abcdef';
    const scrape = (path = '/metrics') => fetch(`http://127.0.0.1:${metricsPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const env = await productionEnvironment(port, { METRICS_PORT: String(metricsPort), METRICS_TOKEN: token });
    const { child } = await startUntil('src/main.ts', env, /authz is serving/, 60_000);
    try {
      await waitFor(async () => (await childPids(child.pid!)).length === 2, 'two workers', 30_000);
      // Each on a connection of its own, which the primary hands to the workers in turn.
      const requests = 20;
      for (let index = 0; index < requests; index++) expect(await statusOnNewConnection(`http://127.0.0.1:${port}/jwks`)).toBe(200);
      const refused = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect({ status: refused.status, challenge: refused.headers.get('www-authenticate') }).toEqual({ status: 401, challenge: 'Bearer realm="metrics"' });
      const metrics = await (await scrape()).text();
      // Counters add up over the workers, whichever of them answered.
      expect(metrics).toContain(`authz_http_requests_total{route="jwks",method="GET",status="200"} ${requests}`);
      // No token was looked up, so no worker keeps copies yet: the least over the workers is 0.
      expect(metrics).toMatch(/^authz_token_cache_live 0$/m);
      expect(metrics).toMatch(/^authz_token_cache_lookups_total\{result="miss"\} 0$/m);
      // The workers share one key directory: its one key is counted once, not once per worker.
      expect(metrics).toMatch(/^authz_signing_keys\{alg="RS256",state="current"\} 1$/m);
      expect((await scrape('/other')).status).toBe(404);

      // While a replacement worker starts (it cannot answer yet), a scrape still answers, from the serving one.
      const [killed] = (await childPids(child.pid!)) as [number];
      process.kill(killed, 'SIGKILL');
      await waitFor(async () => {
        const pids = await childPids(child.pid!);
        return pids.length === 2 && !pids.includes(killed);
      }, 'a replacement worker', 30_000);
      const during = await scrape();
      expect({ status: during.status, body: (await during.text()).slice(0, 120) }).toMatchObject({ status: 200 });
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });
});
