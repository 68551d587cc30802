/**
 * `npm run bench [-- --workers 2 --duration 5 --growth]`: measures the server (production mode, its own Postgres
 * schema and Redis prefix, WEB_CONCURRENCY workers in a child process) against references measured in the same
 * run, and writes bench/results/<date>.{json,md}. See bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { writeNewKey } from '../src/keys/signing-keys.js';
import { closeServices, openServices, type Services } from '../src/services.js';
import { Browser, basic } from './lib/browser.js';
import { cannon, loop, type Measurement, paced } from './lib/load.js';
import { type Child, cpuSeconds, FORWARDED, freePort, sampleRss, startNode, startTs, storeCpuSeconds, type ThreadCpu, threadCpuSeconds, waitForHttp } from './lib/processes.js';
import { REFERENCE_CLIENT } from './references/constants.js';
import { bulkClients, bulkUsers, cloneGrants, clonedToken, createFixtures, type Fixtures, OPAQUE_API, PASSWORD, userEmail } from './lib/seed.js';

const { values: flags } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    duration: { type: 'string', default: '5' },
    /** Each scenario (with its references) is measured this many times; the round with the median ratio is kept. */
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    'bcrypt-cost': { type: 'string', default: '12' },
    users: { type: 'string', default: '1000' },
    /** Service clients that the "many clients" scenario authenticates as in turn. */
    clients: { type: 'string', default: '1000' },
    'refresh-pool': { type: 'string', default: '100000' },
    'log-level': { type: 'string', default: 'info' },
    /** NODE_OPTIONS for the server processes, e.g. "--max-semi-space-size=4" (to measure a runtime setting). */
    'node-options': { type: 'string', default: '' },
    /** Arguments for node before the server's script, e.g. "--heap-growing-percent=30" (V8 flags NODE_OPTIONS refuses). */
    'node-args': { type: 'string', default: '' },
    /** Another checkout of the server to build and run (e.g. a patched copy), for A/B measurements. */
    'server-root': { type: 'string', default: path.join(import.meta.dirname, '..') },
    /** dist: compile src with tsconfig.build.json and run node on the output, as the Docker image does; tsx: run src. */
    runtime: { type: 'string', default: 'dist' },
    /**
     * A file for the server's standard output (its access log, and what `--node-args=--trace-gc` prints), which is
     * otherwise discarded.
     */
    'server-log': { type: 'string', default: '' },
    /** Only the scenarios whose name contains this text (case-insensitive), e.g. "introspection"; for profiling. */
    only: { type: 'string', default: '' },
    growth: { type: 'boolean', default: false },
    'growth-users': { type: 'string', default: '1000000' },
    'growth-clients': { type: 'string', default: '100000' },
    'growth-grants': { type: 'string', default: '10000000' },
    out: { type: 'string', default: path.join(import.meta.dirname, 'results') },
  },
});

const int = (name: keyof typeof flags) => {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a whole number`);
  return value;
};
const WORKERS = Math.max(1, int('workers'));
const SECONDS = Math.max(1, int('duration'));
const ROUNDS = Math.max(1, int('rounds'));
const CONNECTIONS = Math.max(1, int('connections'));
const BCRYPT_COST = int('bcrypt-cost');
const USERS = int('users');
const MANY_CLIENTS = Math.max(1, int('clients'));
const REFRESH_POOL = int('refresh-pool');
const GROWTH = {
  users: int('growth-users'),
  clients: int('growth-clients'),
  /** oidc_models rows: half grants, half refresh tokens. */
  grantRows: int('growth-grants'),
};
const POSTGRES = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const BENCH = import.meta.dirname;
const RUNTIME = flags.runtime === 'tsx' ? 'tsx' : 'dist';
const SERVER_ROOT = path.resolve(String(flags['server-root']));
/** Inside the server's tree, so that the compiled server finds node_modules/ and views/ the way dist/ does. */
const BUILD_DIR = path.join(SERVER_ROOT, 'bench', '.build');

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------------------------
// References

/** One measurement of a reference, taken right before the scenario it is compared with. */
interface Reference extends Measurement {
  /** HTTP, signing, provider or bcrypt. */
  key: ReferenceKey;
  /** Peak RSS per serving process under load, MB (not for bcrypt). */
  rssMb?: number[];
  /** Server CPU time (all processes and threads) per request, µs (not for bcrypt). */
  cpuUs?: number;
}

/** CPU time per request in µs: on a shared machine it moves far less than req/s with other load. */
const perRequestUs = (seconds: number, requests: number) => (requests > 0 ? Math.round((seconds * 1e6) / requests) : 0);

/** The same, for each kind of thread. */
const perRequestByThread = (before: ThreadCpu, after: ThreadCpu, requests: number): ThreadCpu => ({
  main: perRequestUs(after.main - before.main, requests),
  pool: perRequestUs(after.pool - before.pool, requests),
  v8: perRequestUs(after.v8 - before.v8, requests),
  other: perRequestUs(after.other - before.other, requests),
});

type ReferenceKey = 'HTTP' | 'signing' | 'signingPaced' | 'provider' | 'providerIntrospection' | 'bcrypt';
/** The references measured as a rate (all but the paced one, which is a latency at a given rate). */
type RateReferenceKey = Exclude<ReferenceKey, 'signingPaced'>;

const REFERENCE_NAMES: Record<ReferenceKey, string> = {
  HTTP: 'HTTP ceiling (bare Koa, small JSON)',
  signing: 'signing ceiling (bare Koa + jose RS256)',
  signingPaced: 'signing ceiling, offered the same evenly paced rate',
  provider: 'raw oidc-provider, in-memory, client_credentials → JWT',
  providerIntrospection: 'raw oidc-provider, in-memory, introspection (opaque)',
  bcrypt: 'bcrypt ceiling',
};

interface ReferenceServers {
  measure(key: Exclude<RateReferenceKey, 'bcrypt'>): Promise<Reference>;
  /**
   * The signing ceiling under the half-rate line's load: the same evenly paced rate, so that its p99 shows how
   * much of that line's tail the machine and the load generator make, with no store or oidc-provider at all.
   */
  measurePaced(rate: number): Promise<Reference>;
  stop(): Promise<void>;
}

/**
 * Starts the three reference servers (idle until measured) so that each scenario's reference can be measured
 * right before the scenario: on a shared machine, load from elsewhere then hits both alike.
 */
async function startReferences(): Promise<ReferenceServers> {
  const introspected = randomBytes(32).toString('base64url');
  const referenceAuth = { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(REFERENCE_CLIENT.id, REFERENCE_CLIENT.secret) };
  const specs = {
    HTTP: { file: 'http.ts', ready: '/', request: {} },
    signing: { file: 'sign.ts', ready: '/', request: {} },
    provider: {
      file: 'provider.ts',
      ready: '/.well-known/openid-configuration',
      request: {
        url: '/token',
        method: 'POST' as const,
        headers: referenceAuth,
        body: 'grant_type=client_credentials',
      },
    },
    // Its own process, idle until measured, like every reference.
    providerIntrospection: {
      file: 'provider.ts',
      ready: '/.well-known/openid-configuration',
      request: { url: '/token/introspection', method: 'POST' as const, headers: referenceAuth, body: `token=${introspected}` },
    },
  };
  const running = new Map<string, { child: Child; base: string }>();
  try {
    for (const [key, spec] of Object.entries(specs)) {
      const port = await freePort();
      const env = { PORT: String(port), WORKERS: String(WORKERS), NODE_ENV: 'production', INTROSPECTED_TOKEN: introspected };
      const child = startTs(key, path.join(BENCH, 'references', spec.file), env);
      running.set(key, { child, base: `http://127.0.0.1:${port}` });
      await waitForHttp(child, `http://127.0.0.1:${port}${spec.ready}`);
    }
  } catch (error) {
    await Promise.all([...running.values()].map(({ child }) => child.stop()));
    throw error;
  }
  return {
    async measure(key) {
      const { child, base } = running.get(key)!;
      const spec = specs[key];
      const request: Partial<Parameters<typeof cannon>[0]> = spec.request;
      const options = { connections: CONNECTIONS, ...request, url: `${base}${request.url ?? spec.ready}`, seconds: 1 };
      await cannon(options);
      const stop = sampleRss(child.process.pid!);
      const cpuBefore = cpuSeconds(child.process.pid!);
      const result = await cannon({ ...options, seconds: SECONDS });
      const cpuUs = perRequestUs(cpuSeconds(child.process.pid!) - cpuBefore, result.total);
      const rssMb = [...stop().values()].map((mb) => round(mb));
      log(`  reference ${key}: ${round(result.rps)} req/s, ${cpuUs} µs CPU/req`);
      return { key, ...result, rssMb, cpuUs };
    },
    async measurePaced(rate) {
      const { base } = running.get('signing')!;
      const options = { url: `${base}${specs.signing.ready}`, rate, connections: CONNECTIONS };
      await paced({ ...options, seconds: 1 });
      const result = await paced({ ...options, seconds: SECONDS });
      log(`  reference signing at ${rate}/s, evenly paced: p50 ${round(result.p50)} ms, p99 ${round(result.p99)} ms`);
      return { key: 'signingPaced', ...result };
    },
    async stop() {
      await Promise.all([...running.values()].map(({ child }) => child.stop()));
    },
  };
}

async function measureBcrypt(): Promise<Reference> {
  const child = startTs(
    'bcrypt ceiling',
    path.join(BENCH, 'references', 'bcrypt.ts'),
    { WORKERS: String(WORKERS), THREADS: '4', SECONDS: String(SECONDS), COST: String(BCRYPT_COST) },
    'pipe',
  );
  let output = '';
  child.process.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.process.once('exit', resolve));
  if (code !== 0) throw new Error(`bcrypt reference failed:\n${child.stderr()}`);
  const { perSecond } = JSON.parse(output) as { perSecond: number };
  log(`  reference bcrypt: ${round(perSecond)} compares/s`);
  return { key: 'bcrypt', rps: perSecond, p50: 0, p99: 0, errors: 0, total: 0 };
}

// ---------------------------------------------------------------------------------------------------------------
// The server

interface Stores {
  env: Record<string, string>;
  services: Services;
  fixtures: Fixtures;
}

async function prepareStores(scratch: string): Promise<Stores> {
  const keysDir = path.join(scratch, 'keys');
  await writeNewKey(keysDir, { activatesAt: new Date(Date.now() - 3600_000) });
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    ISSUER: 'https://id.bench.test',
    HOST: '127.0.0.1',
    PROXY: 'true',
    WEB_CONCURRENCY: String(WORKERS),
    DATABASE_URL: POSTGRES,
    DATABASE_SCHEMA: `bench_${process.pid}`,
    REDIS_URL: REDIS,
    REDIS_KEY_PREFIX: `bench:${process.pid}:`,
    COOKIE_SECRETS: randomBytes(32).toString('base64url'),
    CLIENT_SECRET_PEPPERS: `b1:${randomBytes(32).toString('base64url')}`,
    KEYS_DIR: keysDir,
    DATA_DIR: path.join(scratch, 'data'),
    BCRYPT_COST: String(BCRYPT_COST),
    LOG_LEVEL: String(flags['log-level']),
  };
  // Seeding (10 million rows in the growth run) and its vacuum run far longer than a request's query may.
  const services = await openServices(loadConfig({ ...env, DATABASE_QUERY_TIMEOUT: '0' }));
  const fixtures = await createFixtures(services);
  await bulkUsers(services.db, 1, USERS);
  await bulkClients(services.db, 1, MANY_CLIENTS);
  return { env, services, fixtures };
}

async function startServer(stores: Stores): Promise<{ child: Child; base: string }> {
  const port = await freePort();
  const env: Record<string, string> = { ...stores.env, PORT: String(port) };
  if (flags['node-options']) env.NODE_OPTIONS = String(flags['node-options']);
  const nodeArgs = String(flags['node-args']).split(/\s+/).filter(Boolean);
  const stdout = flags['server-log'] ? openSync(String(flags['server-log']), 'a') : 'ignore';
  const child =
    RUNTIME === 'tsx'
      ? startNode('server', [...nodeArgs, '--import', 'tsx', path.join(SERVER_ROOT, 'src', 'main.ts')], env, stdout)
      : startNode('server', [...nodeArgs, path.join(BUILD_DIR, 'src', 'main.js')], env, stdout);
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(child, `${base}/.well-known/openid-configuration`);
  return { child, base };
}

/** `--only <text>`: the scenarios whose name contains the text; `--only "=<name>"`: the one of that exact name. */
const selected = (name: string) => {
  const only = String(flags.only).toLowerCase();
  return only.startsWith('=') ? name.toLowerCase() === only.slice(1) : name.toLowerCase().includes(only);
};

const HALF_RATE = 'client_credentials → JWT at half its max rate';
/** Named after the default --clients; the count used is in the report's header. */
const MANY_CLIENTS_SCENARIO = 'client_credentials → JWT, many clients in turn';

export interface ScenarioResult extends Measurement {
  name: string;
  /** The fixed request rate offered (evenly paced, bench/lib/load.ts `paced`), when there was one. */
  offered?: number;
  /** Peak RSS of each serving process during the scenario, MB. */
  rssMb: number[];
  /** Server CPU time per request (per completed sign-in for the login), µs. */
  cpuUs: number;
  /** PostgreSQL and Redis CPU time per request, µs (they share the cores with the server). */
  storeCpuUs: number;
  /** The server's CPU per request by kind of thread, µs. */
  threadCpuUs?: ThreadCpu;
  /** The references this scenario is compared with, each measured just before it. */
  references: Partial<Record<ReferenceKey, Reference>>;
  /** Each round's ratio to its reference (the half-rate line: each round's p99), in the order measured. */
  rounds?: number[];
}

/** What ranks a round: its ratio to the scenario's reference; for the half-rate line, its p99. */
const figureOf = (result: ScenarioResult): number => (result.name === HALF_RATE ? result.p99 : (ratioOf(result).ratio ?? result.rps));

/**
 * One result from several rounds: the round with the median figure (so one disturbed round, in either direction,
 * moves nothing), with the errors of every round and each worker's peak RSS over every round.
 */
function medianRound(rounds: ScenarioResult[]): ScenarioResult {
  const figures = rounds.map(figureOf);
  const ranked = [...rounds].sort((a, b) => figureOf(a) - figureOf(b));
  const chosen = ranked[Math.floor((ranked.length - 1) / 2)] as ScenarioResult;
  const workers = Math.max(...rounds.map((result) => result.rssMb.length));
  return {
    ...chosen,
    errors: rounds.reduce((sum, result) => sum + result.errors, 0),
    rssMb: Array.from({ length: workers }, (_, index) => Math.max(...rounds.map((result) => result.rssMb[index] ?? 0))),
    rounds: figures,
  };
}

/** RSS of each serving process one second after start, before any load, per phase. */
const idleRss: Record<string, number[]> = {};

async function runScenarios(stores: Stores, phase: string, userCount: number): Promise<ScenarioResult[]> {
  const { services, fixtures } = stores;
  log(`${phase}: starting the references and the server…`);
  const references = await startReferences();
  const { child, base } = await startServer(stores).catch(async (error) => {
    await references.stop();
    throw error;
  });
  const pid = child.process.pid!;
  const results: ScenarioResult[] = [];
  await new Promise((resolve) => setTimeout(resolve, 1000));
  idleRss[phase] = [...sampleRss(pid)().values()].map((mb) => round(mb));
  const form = { ...FORWARDED, 'content-type': 'application/x-www-form-urlencoded' };
  const serviceAuth = { ...form, authorization: basic(fixtures.service.clientId, fixtures.service.secret) };
  const webAuth = { ...form, authorization: basic(fixtures.web.clientId, fixtures.web.secret) };

  /** `pacedAt`: the rate at which the scenario is offered evenly paced, for the paced signing reference. */
  type Extras = { warmup?: () => Promise<unknown>; pacedAt?: number };
  const measureOnce = async (name: string, run: () => Promise<Measurement>, { warmup, pacedAt }: Extras): Promise<ScenarioResult> => {
    const compared: Partial<Record<ReferenceKey, Reference>> = {};
    for (const key of referencesOf(name)) compared[key] = key === 'bcrypt' ? await measureBcrypt() : await references.measure(key);
    if (pacedAt) compared.signingPaced = await references.measurePaced(pacedAt);
    if (warmup) await warmup();
    const stop = sampleRss(pid);
    const cpuBefore = cpuSeconds(pid);
    const storeCpuBefore = storeCpuSeconds();
    const threadsBefore = threadCpuSeconds(pid);
    const measured = await run();
    const cpuUs = perRequestUs(cpuSeconds(pid) - cpuBefore, measured.total);
    const threadCpuUs = perRequestByThread(threadsBefore, threadCpuSeconds(pid), measured.total);
    // Never below 0: a store process that exits during the scenario (an autovacuum worker) takes its ticks along.
    const storeCpuUs = perRequestUs(Math.max(0, storeCpuSeconds() - storeCpuBefore), measured.total);
    const rss = [...stop().values()].map((mb) => round(mb));
    log(`${phase} ${name}: ${round(measured.rps)}/s p50 ${round(measured.p50)} ms p99 ${round(measured.p99)} ms errors ${measured.errors}, ${cpuUs} µs CPU/req (+ ${storeCpuUs} in the stores)`);
    return { name, ...measured, rssMb: rss, references: compared, cpuUs, storeCpuUs, threadCpuUs };
  };
  const measure = async (name: string, run: () => Promise<Measurement>, extras: Extras = {}) => {
    if (!selected(name)) return { name, rps: 0, p50: 0, p99: 0, errors: 0, total: 0, rssMb: [], cpuUs: 0, storeCpuUs: 0, references: {} } satisfies ScenarioResult;
    const rounds: ScenarioResult[] = [];
    for (let index = 0; index < ROUNDS; index++) rounds.push(await measureOnce(name, run, extras));
    const result = medianRound(rounds);
    results.push(result);
    return result;
  };
  const http = (name: string, options: Omit<Parameters<typeof cannon>[0], 'seconds' | 'connections'>) =>
    measure(
      name,
      () => cannon({ connections: CONNECTIONS, ...options, seconds: SECONDS }),
      { warmup: () => cannon({ connections: CONNECTIONS, ...options, seconds: 1 }) },
    );

  try {
    // Tokens the scenarios present, made the way a client would.
    const browser = new Browser(base);
    const web = { ...fixtures.web };
    const signedIn = await browser.signIn(web, { email: userEmail(0), password: PASSWORD, scope: 'openid email profile' });
    const offline = await browser.signIn(web, { email: userEmail(0), password: PASSWORD, scope: 'openid offline_access', prompt: 'consent' });
    if (!offline.refresh_token) throw new Error('no refresh token from an offline_access sign-in');
    const opaque = await fetch(`${base}/token`, { method: 'POST', headers: serviceAuth, body: `grant_type=client_credentials&resource=${encodeURIComponent(OPAQUE_API)}` });
    const opaqueToken = ((await opaque.json()) as { access_token: string }).access_token;
    if (opaqueToken.split('.').length === 3) throw new Error('the opaque API issued a JWT');
    const prefix = `${phase}${Date.now().toString(36)}`;
    await cloneGrants(services.db, prefix, 1, REFRESH_POOL, offline.refresh_token);
    // Now, rather than autovacuum reacting to the bulk insert in the middle of the first scenarios.
    await services.db.raw('vacuum analyze oidc_models');
    let nextRefresh = 1;

    await http('discovery', { url: `${base}/.well-known/openid-configuration`, headers: FORWARDED });
    await http('JWKS', { url: `${base}/jwks`, headers: FORWARDED });
    const cc = await http('client_credentials → JWT', { url: `${base}/token`, method: 'POST', headers: serviceAuth, body: 'grant_type=client_credentials' });
    let nextClient = 0;
    await http(MANY_CLIENTS_SCENARIO, {
      url: `${base}/token`,
      method: 'POST',
      body: 'grant_type=client_credentials',
      // The bulk clients share the bench service's secret (lib/seed.ts).
      nextHeaders: () => ({ ...form, authorization: basic(`bench-c${(nextClient++ % MANY_CLIENTS) + 1}`, fixtures.service.secret) }),
    });
    await http('client_credentials → opaque', {
      url: `${base}/token`,
      method: 'POST',
      headers: serviceAuth,
      body: `grant_type=client_credentials&resource=${encodeURIComponent(OPAQUE_API)}`,
    });
    await http('introspection (opaque)', { url: `${base}/token/introspection`, method: 'POST', headers: serviceAuth, body: `token=${opaqueToken}` });
    await http('introspection (opaque, token_type_hint=access_token)', {
      url: `${base}/token/introspection`,
      method: 'POST',
      headers: serviceAuth,
      body: `token=${opaqueToken}&token_type_hint=access_token`,
    });
    await http('refresh_token (rotating)', {
      url: `${base}/token`,
      method: 'POST',
      headers: webAuth,
      nextBody: () => (nextRefresh > REFRESH_POOL ? undefined : `grant_type=refresh_token&refresh_token=${clonedToken(prefix, nextRefresh++)}`),
    });
    if (nextRefresh > REFRESH_POOL) log('refresh pool ran out: raise --refresh-pool');
    await http('userinfo', { url: `${base}/me`, headers: { ...FORWARDED, authorization: `Bearer ${signedIn.access_token}` } });
    const lanes = Array.from({ length: WORKERS * 4 }, () => new Browser(base));
    await measure('full login (authorize → form → code → token)', async () => {
      const measured = await loop(SECONDS, lanes.length, async (lane) => {
        const email = userEmail(Math.floor(Math.random() * (userCount + 1)));
        await lanes[lane]!.signIn(web, { email, password: PASSWORD, scope: 'openid email' });
      });
      if (measured.lastError) log(`full login: last error: ${measured.lastError}`);
      return measured;
    });
    const halfRate = Math.max(1, Math.round(cc.rps / 2));
    const half = await measure(
      HALF_RATE,
      () =>
        paced({
          url: `${base}/token`,
          method: 'POST',
          headers: serviceAuth,
          body: 'grant_type=client_credentials',
          connections: CONNECTIONS,
          rate: halfRate,
          seconds: SECONDS,
        }),
      { pacedAt: halfRate },
    );
    half.offered = halfRate;
  } finally {
    await child.stop();
    await references.stop();
  }
  return results;
}

async function seedGrowth(services: Services, signIn: () => Promise<string>): Promise<{ seconds: number; rows: Record<string, number> }> {
  const started = performance.now();
  const { db } = services;
  log(`growth: ${GROWTH.users} users…`);
  await bulkUsers(db, USERS + 1, GROWTH.users);
  log(`growth: ${GROWTH.clients} clients…`);
  await bulkClients(db, MANY_CLIENTS + 1, GROWTH.clients);
  const pairs = Math.floor(GROWTH.grantRows / 2);
  const template = await signIn();
  const batch = 1_000_000;
  for (let from = 1; from <= pairs; from += batch) {
    const to = Math.min(pairs, from + batch - 1);
    await cloneGrants(db, 'grow', from, to, template);
    log(`growth: ${to * 2} / ${pairs * 2} grant + refresh token rows (${round((performance.now() - started) / 1000)} s)`);
  }
  // Vacuumed and analysed now, so that autovacuum does not work through the new rows during the scenarios.
  await db.raw('vacuum analyze');
  const count = async (sql: string) => Number(((await db.raw(sql)) as { rows: { n: string }[] }).rows[0]?.n ?? 0);
  const rows = {
    users: await count('select count(*) as n from users'),
    clients: await count('select count(*) as n from clients'),
    oidc_models: await count('select count(*) as n from oidc_models'),
  };
  return { seconds: (performance.now() - started) / 1000, rows };
}

// ---------------------------------------------------------------------------------------------------------------
// Report

interface Target {
  line: string;
  measured: string;
  pass: boolean;
}

interface Phase {
  name: 'base' | 'growth';
  results: ScenarioResult[];
}

/** Which reference each scenario is quoted against, and the target ratio when there is one. */
const REFERENCE_OF: Record<string, { reference: RateReferenceKey; atLeast?: number }> = {
  discovery: { reference: 'HTTP', atLeast: 0.6 },
  JWKS: { reference: 'HTTP', atLeast: 0.6 },
  'client_credentials → JWT': { reference: 'signing', atLeast: 0.6 },
  [MANY_CLIENTS_SCENARIO]: { reference: 'signing' },
  'client_credentials → opaque': { reference: 'HTTP' },
  'introspection (opaque)': { reference: 'HTTP', atLeast: 0.3 },
  'introspection (opaque, token_type_hint=access_token)': { reference: 'HTTP' },
  'refresh_token (rotating)': { reference: 'signing', atLeast: 0.3 },
  userinfo: { reference: 'HTTP' },
  'full login (authorize → form → code → token)': { reference: 'bcrypt', atLeast: 0.8 },
};

function referencesOf(name: string): RateReferenceKey[] {
  const entry = REFERENCE_OF[name];
  if (!entry) return [];
  if (name === 'client_credentials → JWT') return [entry.reference, 'provider'];
  if (name.startsWith('introspection')) return [entry.reference, 'providerIntrospection'];
  return [entry.reference];
}

/** The scenario's rate as a multiple of its reference, measured just before it. */
function ratioOf(result: ScenarioResult): { ratio?: number; ref?: Reference; atLeast?: number } {
  const entry = REFERENCE_OF[result.name];
  const ref = entry && result.references[entry.reference];
  return ref ? { ratio: result.rps / ref.rps, ref, atLeast: entry.atLeast } : {};
}

const referenceName = (key: ReferenceKey) => (key === 'bcrypt' ? `${REFERENCE_NAMES.bcrypt} (cost ${BCRYPT_COST})` : REFERENCE_NAMES[key]);

function targets(phases: Phase[]): Target[] {
  const list: Target[] = [];
  for (const phase of phases) {
    const suffix = phase.name === 'base' ? '' : ` (${phase.name})`;
    for (const result of phase.results) {
      const { ratio, ref, atLeast } = ratioOf(result);
      if (ratio !== undefined && ref && atLeast !== undefined) {
        list.push({ line: `${result.name}${suffix} ≥ ${atLeast}× ${referenceName(ref.key)}`, measured: `${round(ratio, 2)}×`, pass: ratio >= atLeast });
      }
      const raw = result.references.provider;
      if (raw) {
        const versus = result.rps / raw.rps;
        list.push({ line: `${result.name}${suffix} ≥ 1.0× ${referenceName('provider')}`, measured: `${round(versus, 2)}×`, pass: versus >= 1 });
      }
      if (result.name === HALF_RATE) {
        list.push({ line: `p99 of client_credentials at half its max rate${suffix} ≤ 25 ms`, measured: `${round(result.p99)} ms`, pass: result.p99 <= 25 });
      }
    }
    const peak = Math.max(...phase.results.flatMap((result) => result.rssMb));
    list.push({ line: `RSS per worker under load${suffix} ≤ 150 MB`, measured: `${round(peak)} MB peak`, pass: peak <= 150 });
    const errors = phase.results.reduce((sum, result) => sum + result.errors, 0);
    list.push({ line: `no errors${suffix}`, measured: `${errors}`, pass: errors === 0 });
  }
  const [base, growth] = phases;
  if (base && growth) {
    for (const result of base.results) {
      const grown = growth.results.find((candidate) => candidate.name === result.name);
      const change = grown && growthChange(result, grown);
      if (change === undefined) continue;
      list.push({ line: `${result.name}: growth within 10%`, measured: `${round(change, 2)}× of base`, pass: change >= 0.9 });
    }
  }
  return list;
}

/**
 * Growth rate over base rate, each first divided by its phase's reference, so that the machine getting busier
 * between the phases does not count as the data's fault. For the half-rate line: base p99 over growth p99.
 */
function growthChange(result: ScenarioResult, grown: ScenarioResult): number | undefined {
  if (result.name === HALF_RATE) return grown.p99 > 0 ? result.p99 / grown.p99 : 1;
  const before = ratioOf(result).ratio;
  const after = ratioOf(grown).ratio;
  return before && after !== undefined ? after / before : grown.rps / result.rps;
}

function markdown(report: Report): string {
  const { machine, phases } = report;
  const [base, growth] = phases as [Phase, Phase | undefined];
  const lines = [
    `# Benchmark ${machine.date}`,
    '',
    `${machine.cpus}× ${machine.cpuModel}, ${machine.memoryGb} GB, Node ${machine.node}, ${machine.workers} worker(s), bcrypt cost ${machine.bcryptCost}, ` +
      `${machine.seconds} s per scenario, ${machine.rounds} round(s), ${machine.connections} connections, LOG_LEVEL=${machine.logLevel}` +
      `${machine.nodeOptions ? `, NODE_OPTIONS=${machine.nodeOptions}` : ''}${machine.nodeArgs ? `, node ${machine.nodeArgs}` : ''}, server run from ${machine.runtime === 'dist' ? 'compiled JS (tsconfig.build.json)' : 'tsx'}. ` +
      `Command: \`${machine.command}\``,
    '',
    'References, measured again right before each scenario quoted against them (median, min–max over the run):',
    '',
    '| Reference | median | min–max | measurements | CPU µs/req (median) | peak RSS/worker MB |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const key of Object.keys(REFERENCE_NAMES) as ReferenceKey[]) {
    const taken = phases.flatMap((phase) => phase.results.flatMap((result) => result.references[key] ?? []));
    // A latency at a given rate, not a rate: shown with the half-rate line.
    if (taken.length === 0 || key === 'signingPaced') continue;
    const rates = taken.map((reference) => reference.rps).sort((a, b) => a - b);
    const median = rates[Math.floor(rates.length / 2)] ?? 0;
    const rss = Math.max(0, ...taken.flatMap((reference) => reference.rssMb ?? []));
    const unit = key === 'bcrypt' ? 'compares/s' : 'req/s';
    const cpus = taken.flatMap((reference) => reference.cpuUs ?? []).sort((a, b) => a - b);
    const cpu = cpus.length > 0 ? String(cpus[Math.floor(cpus.length / 2)]) : '';
    lines.push(`| ${referenceName(key)} | ${round(median)} ${unit} | ${round(rates[0] ?? 0)}–${round(rates.at(-1) ?? 0)} | ${rates.length} | ${cpu} | ${rss ? round(rss) : ''} |`);
  }
  lines.push('');
  lines.push(
    ...(growth
      ? [
          '| Scenario | req/s | p50 ms | p99 ms | errors | CPU µs/req | store CPU µs/req | vs reference | growth req/s | growth p99 ms | growth errors | growth vs reference | growth/base |',
          '|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|',
        ]
      : [
          '| Scenario | req/s | p50 ms | p99 ms | errors | CPU µs/req | store CPU µs/req | vs reference |',
          '|---|---:|---:|---:|---:|---:|---:|---|',
        ]),
  );
  const versus = (result: ScenarioResult) => {
    const { ratio, ref } = ratioOf(result);
    const parts = ratio !== undefined && ref ? [`${round(ratio, 2)}× ${ref.key}`] : [];
    const raw = result.references.provider ?? result.references.providerIntrospection;
    if (raw) parts.push(`${round(result.rps / raw.rps, 2)}× raw oidc-provider`);
    if (parts.length === 0 && result.offered) parts.push(`offered ${result.offered}/s`);
    if (result.rounds && result.rounds.length > 1) {
      const [low, high] = [Math.min(...result.rounds), Math.max(...result.rounds)];
      parts.push(result.name === HALF_RATE ? `p99 ${round(low)}–${round(high)} ms over rounds` : `rounds ${round(low, 2)}–${round(high, 2)}×`);
    }
    const pacedSigning = result.references.signingPaced;
    if (pacedSigning) parts.push(`signing ceiling at the same rate: p99 ${round(pacedSigning.p99)} ms`);
    return parts.join(', ');
  };
  for (const result of base.results) {
    const row: (string | number)[] = [
      result.name,
      round(result.rps),
      round(result.p50),
      round(result.p99),
      result.errors,
      result.threadCpuUs ? `${result.cpuUs} (${result.threadCpuUs.main} / ${result.threadCpuUs.pool} / ${result.threadCpuUs.v8})` : result.cpuUs,
      result.storeCpuUs,
      versus(result),
    ];
    const grown = growth?.results.find((candidate) => candidate.name === result.name);
    if (growth) {
      const change = grown && growthChange(result, grown);
      row.push(
        grown ? round(grown.rps) : '',
        grown ? round(grown.p99) : '',
        grown ? grown.errors : '',
        grown ? versus(grown) : '',
        change !== undefined ? `${round(change, 2)}×` : '',
      );
    }
    lines.push(`| ${row.join(' | ')} |`);
  }
  if (machine.rounds > 1) {
    lines.push(
      '',
      `Each scenario ran ${machine.rounds} times, each round right after its own reference measurements; a row shows the round with the median ratio ` +
        '(the half-rate line: the median p99), with the spread of the ratios over the rounds; errors and peak RSS count every round.',
    );
  }
  lines.push('', 'Login rate is completed sign-ins per second (5 requests each: authorize, login page, form post, resume, token exchange).');
  lines.push(`"Many clients in turn": each request authenticates as the next of ${machine.manyClients} service clients, round robin — past the 100 built clients oidc-provider keeps itself.`);
  lines.push(
    'CPU µs/req: user + system CPU of the serving processes (all threads) per request (per sign-in for the login), from /proc; in brackets the part spent on the JavaScript threads / the libuv pool (bcrypt, signing) / V8 workers (GC); ' +
      'it moves far less than req/s with other load, though it drifted by 10–20 % over a day on a shared machine: compare runs made back to back. Store CPU µs/req: the same for every PostgreSQL and Redis server process, which share the cores (the load generator does too, and is not counted).',
  );
  if (growth) lines.push('growth/base compares the ratios to the references (so machine drift between the phases cancels); for the half-rate line it is base p99 / growth p99. ≥ 0.9× passes.');
  lines.push(
    `Server RSS per worker: idle ${report.rss.idle.base?.join(', ')} MB, peak under load ${report.rss.base.join(', ')} MB` +
      (growth ? `; growth: idle ${report.rss.idle.growth?.join(', ')} MB, peak ${report.rss.growth?.join(', ')} MB.` : '.'),
  );
  if (report.growthSeed) {
    lines.push(
      `Growth data: ${Object.entries(report.growthSeed.rows)
        .map(([table, rows]) => `${table} ${rows.toLocaleString('en')}`)
        .join(', ')} rows, seeded in ${round(report.growthSeed.seconds)} s.`,
    );
  }
  lines.push('', '| Target | measured | result |', '|---|---:|---|');
  for (const target of report.targets) lines.push(`| ${target.line} | ${target.measured} | ${target.pass ? 'pass' : '**FAIL**'} |`);
  return `${lines.join('\n')}\n`;
}

interface Report {
  machine: {
    date: string;
    cpuModel: string;
    cpus: number;
    memoryGb: number;
    node: string;
    workers: number;
    bcryptCost: number;
    /** Service clients of the "many clients in turn" scenario. */
    manyClients: number;
    seconds: number;
    rounds: number;
    connections: number;
    logLevel: string;
    nodeOptions: string;
    nodeArgs: string;
    runtime: string;
    serverRoot: string;
    command: string;
  };
  phases: Phase[];
  growthSeed?: { seconds: number; rows: Record<string, number> };
  rss: { base: number[]; growth?: number[]; idle: Record<string, number[]> };
  targets: Target[];
}

const peakPerWorker = (results: ScenarioResult[]) => {
  const count = Math.max(...results.map((result) => result.rssMb.length));
  return Array.from({ length: count }, (_, index) => round(Math.max(...results.map((result) => result.rssMb[index] ?? 0))));
};

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (Number(process.versions.node.split('.')[0]) < 24) log(`warning: Node ${process.version}; the server expects 24`);
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'authz-bench-'));
  let stores: Stores | undefined;
  try {
    if (RUNTIME === 'dist') await buildServer();
    log('seeding…');
    stores = await prepareStores(scratch);
    const phases: Phase[] = [];
    phases.push({ name: 'base', results: await runScenarios(stores, 'base', USERS) });
    let growthSeed: Report['growthSeed'];
    if (flags.growth) {
      const seedStores = stores;
      growthSeed = await seedGrowth(stores.services, async () => {
        // One real grant + refresh token to clone, made by a running server.
        const { child, base: url } = await startServer(seedStores);
        try {
          const tokens = await new Browser(url).signIn(seedStores.fixtures.web, {
            email: userEmail(0),
            password: PASSWORD,
            scope: 'openid offline_access',
            prompt: 'consent',
          });
          return tokens.refresh_token!;
        } finally {
          await child.stop();
        }
      });
      log(`growth seeded in ${round(growthSeed.seconds)} s: ${JSON.stringify(growthSeed.rows)}`);
      phases.push({ name: 'growth', results: await runScenarios(stores, 'growth', GROWTH.users) });
    }
    const [base, growth] = phases as [Phase, Phase | undefined];

    const report: Report = {
      machine: {
        date: new Date().toISOString(),
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        cpus: os.cpus().length,
        memoryGb: round(os.totalmem() / 2 ** 30),
        node: process.version,
        workers: WORKERS,
        bcryptCost: BCRYPT_COST,
        manyClients: MANY_CLIENTS,
        seconds: SECONDS,
        rounds: ROUNDS,
        connections: CONNECTIONS,
        logLevel: String(flags['log-level']),
        nodeOptions: String(flags['node-options']),
        nodeArgs: String(flags['node-args']),
        runtime: RUNTIME,
        serverRoot: SERVER_ROOT,
        command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, ''),
      },
      phases,
      growthSeed,
      rss: { base: peakPerWorker(base.results), growth: growth && peakPerWorker(growth.results), idle: idleRss },
      targets: targets(phases),
    };
    const text = markdown(report);
    if (flags.only) {
      // A partial run (profiling, A/B) is not a result to keep.
      process.stdout.write(`\n${text}\n(--only: nothing written)\n`);
      return;
    }
    await mkdir(String(flags.out), { recursive: true });
    const stem = path.join(String(flags.out), `${report.machine.date.slice(0, 19).replace(/:/g, '-')}-${WORKERS}w${growth ? '-growth' : ''}`);
    await writeFile(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(`${stem}.md`, text);
    process.stdout.write(`\n${text}\nwritten: ${stem}.json, ${stem}.md\n`);
  } finally {
    if (stores) await cleanUp(stores);
    await rm(scratch, { recursive: true, force: true });
    await rm(BUILD_DIR, { recursive: true, force: true });
  }
}

/** `tsc -p tsconfig.build.json` into bench/.build (not dist/, which is the project's own). */
async function buildServer(): Promise<void> {
  log('compiling the server (tsconfig.build.json)…');
  const root = SERVER_ROOT;
  const tsc = startNode(
    'tsc',
    [path.join(BENCH, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json'), '--outDir', BUILD_DIR, '--sourceMap', 'false'],
    {},
    'pipe',
  );
  let output = '';
  tsc.process.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => tsc.process.once('exit', resolve));
  if (code !== 0) throw new Error(`the server does not compile:\n${output}${tsc.stderr()}`);
}

async function cleanUp(stores: Stores): Promise<void> {
  const schema = stores.env.DATABASE_SCHEMA!;
  await stores.services.db.raw('drop schema if exists ?? cascade', [schema]).catch((error) => log(`could not drop ${schema}: ${error}`));
  await closeServices(stores.services);
  const redis = new Redis(REDIS, { lazyConnect: true });
  try {
    await redis.connect();
    const prefix = stores.env.REDIS_KEY_PREFIX!;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
