/**
 * The README's production path on the compiled build: `npm run build`, then `node dist/src/cli.js migrate` and
 * `node dist/src/main.js` with NODE_ENV=production, on the repository's Node and nothing else (no tsx). The
 * build goes to a folder of its own under dist/ (git-ignored): the compiled code finds node_modules/ and views/
 * by walking up from its own files, as it does from dist/. The processes run from a scratch folder, so nothing
 * may depend on the working directory. Checks: migrations, the CLI registering an API and clients, discovery,
 * JWKS, a client-credentials JWT, the login page and its stylesheet, SIGHUP, and two workers.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type JSONWebKeySet, createLocalJWKSet, jwtVerify } from 'jose';
import { writeNewKey } from '../../src/keys/signing-keys.js';
import { closeDatabase, openDatabase } from '../../src/store/database.js';
import { type TestRedis, createTestRedis, describeWithServers, postgresUrl, uniqueName } from '../support/environment.js';
import { cleanEnvironment, freePort, nodeBinary, repositoryRoot, stop, waitFor } from '../support/process.js';
import { API, REDIRECT_URI, loginFormOf } from '../support/relying-party.js';
import { UserAgent } from '../support/user-agent.js';

const ISSUER = 'https://id.build.test';
/** What the TLS-terminating proxy in front of a production server adds (PROXY=true). */
const FROM_PROXY = { 'x-forwarded-proto': 'https' };
/** tsc takes a minute on a slow machine. */
const BUILD_TIMEOUT_MS = 240_000;

type Finished = { code: number | null; stdout: string; stderr: string };

/** Collects a child's output until it exits. */
function finished(child: ChildProcessWithoutNullStreams, input = ''): Promise<Finished> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Resolves once the server prints its banner; fails with its output if it exits or takes too long. */
function untilServing(child: ChildProcessWithoutNullStreams, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not serving after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.stderr.on('data', (chunk) => (output += chunk));
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (/authz is serving/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before serving:\n${output}`));
    });
  });
}

describeWithServers('the compiled build in production', () => {
  let buildDir: string;
  let createdDist = false;
  let scratch: string;
  let keysDir: string;
  let schema: string;
  let redis: TestRedis;
  let firstKid: string;

  beforeAll(async () => {
    const dist = path.join(repositoryRoot, 'dist');
    createdDist = (await mkdir(dist, { recursive: true })) !== undefined;
    buildDir = await mkdtemp(path.join(dist, 'test-build-'));
    const build = await finished(spawn('npm', ['run', 'build', '--', '--outDir', buildDir], { cwd: repositoryRoot, env: process.env }));
    if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);

    scratch = await mkdtemp(path.join(tmpdir(), 'authz-compiled-'));
    keysDir = path.join(scratch, 'keys');
    // The first production key is made by hand (keys/README.md); the server never generates one there.
    ({ kid: firstKid } = await writeNewKey(keysDir, { activatesAt: new Date(Date.now() - 3600_000) }));
    schema = uniqueName('build');
    redis = await createTestRedis();
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await redis?.drop();
    if (schema) {
      const db = await openDatabase({ url: postgresUrl, embeddedDir: ':memory:' });
      await db.raw('drop schema if exists ?? cascade', [schema]);
      await closeDatabase(db);
    }
    if (scratch) await rm(scratch, { recursive: true, force: true });
    if (buildDir) await rm(buildDir, { recursive: true, force: true });
    // Only a dist/ this test made, and only while empty (someone may have built meanwhile).
    if (createdDist) await rmdir(path.join(repositoryRoot, 'dist')).catch(() => undefined);
  });

  const cookieSecret = randomBytes(32).toString('base64url');
  const pepper = `b1:${randomBytes(32).toString('base64url')}`;
  /** The README's production settings; every process of the build gets the same. */
  const production = (extra: Record<string, string> = {}) =>
    cleanEnvironment({
      NODE_ENV: 'production',
      ISSUER,
      HOST: '127.0.0.1',
      PROXY: 'true',
      DATABASE_URL: postgresUrl,
      DATABASE_SCHEMA: schema,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redis.keyPrefix,
      KEYS_DIR: keysDir,
      COOKIE_SECRETS: cookieSecret,
      CLIENT_SECRET_PEPPERS: pepper,
      LOG_LEVEL: 'warn',
      ...extra,
    });

  /** `node <build>/src/<entry>.js …` from the scratch folder. */
  const compiled = (entry: 'cli' | 'main', args: string[], env: NodeJS.ProcessEnv) =>
    spawn(nodeBinary, [path.join(buildDir, 'src', `${entry}.js`), ...args], { cwd: scratch, env });
  const authz = async (args: string[]) => {
    const result = await finished(compiled('cli', args, production()));
    if (result.code !== 0) throw new Error(`authz ${args.join(' ')} exited with ${result.code}:\n${result.stderr}`);
    return result.stdout;
  };

  async function startServer(extra: Record<string, string> = {}) {
    const port = await freePort();
    const child = compiled('main', [], production({ PORT: String(port), ...extra }));
    await untilServing(child);
    return { child, url: `http://127.0.0.1:${port}` };
  }

  let service: { client_id: string; client_secret: string };
  let web: { client_id: string };

  test('the compiled CLI migrates a fresh schema and registers an API, a service and a web app', async () => {
    expect(await authz(['migrate'])).toMatch(/^applied 20261124_0001_initial, /);
    expect(await authz(['migrate'])).toBe('the schema is up to date\n');
    await authz(['apis', 'add', '--indicator', API, '--name', 'API', '--scopes', 'read', '--default']);
    service = JSON.parse(await authz(['clients', 'add', '--type', 'service', '--name', 'Nightly job', '--json']));
    expect(service.client_secret).toEqual(expect.any(String));
    web = JSON.parse(await authz(['clients', 'add', '--type', 'web', '--name', 'Web App', '--redirect-uri', REDIRECT_URI, '--json']));
  });

  const get = (url: string) => fetch(url, { headers: FROM_PROXY });
  const publishedKids = async (url: string) => ((await (await get(`${url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);

  /** Discovery, JWKS, a client-credentials JWT that verifies against that JWKS, and the login page with its stylesheet. */
  async function expectServing(url: string) {
    const discovery = (await (await get(`${url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ issuer: ISSUER, grant_types_supported: expect.arrayContaining(['client_credentials']) });

    const jwks = (await (await get(`${url}/jwks`)).json()) as JSONWebKeySet;
    expect(jwks.keys.map((key) => key.kid)).toContain(firstKid);

    const basic = Buffer.from(`${service.client_id}:${service.client_secret}`).toString('base64');
    const token = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { ...FROM_PROXY, authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(token.status).toBe(200);
    const { access_token } = (await token.json()) as { access_token: string };
    const { payload, protectedHeader } = await jwtVerify(access_token, createLocalJWKSet(jwks), { issuer: ISSUER, audience: API, typ: 'at+jwt' });
    expect(protectedHeader.kid).toBe(firstKid);
    expect(payload.client_id).toBe(service.client_id);

    // The login page is a nunjucks template from views/, found from the compiled module's own folder.
    const agent = new UserAgent();
    const authorization = new URLSearchParams({
      client_id: web.client_id,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: REDIRECT_URI,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const redirect = await agent.request(`${url}/auth?${authorization}`, { headers: FROM_PROXY });
    expect(redirect.status).toBe(303);
    const interaction = new URL(redirect.headers.get('location') as string, url);
    const page = await agent.request(`${url}${interaction.pathname}`, { headers: FROM_PROXY });
    expect(page.status).toBe(200);
    const html = await page.text();
    const form = loginFormOf({ url: interaction.href, status: page.status, html, headers: page.headers });
    expect(form.fields.map((field) => field.name)).toEqual(expect.arrayContaining(['csrf', 'email', 'password']));
    expect(html).toContain('Web App');
    const stylesheet = await get(`${url}/assets/style.css`);
    expect(stylesheet.status).toBe(200);
    expect(stylesheet.headers.get('content-type')).toMatch(/^text\/css/);
    expect((await stylesheet.text()).length).toBeGreaterThan(0);
  }

  test('the compiled server serves discovery, JWKS, tokens and the login page; SIGHUP loads a key the CLI added', async () => {
    const { child, url } = await startServer({ KEYS_RESCAN_INTERVAL: '1h' });
    try {
      await expectServing(url);

      const rotated = await authz(['keys', 'rotate', '--activate-in', '2h']);
      const added = rotated.match(/wrote (\S+)\.pem/)?.[1] as string;
      expect(added).toEqual(expect.any(String));
      child.kill('SIGHUP');
      const published = await waitFor(async () => {
        const kids = await publishedKids(url);
        return kids.includes(added) && kids;
      }, 'the added key in JWKS');
      expect(published).toEqual([firstKid, added]);
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });

  test('with WEB_CONCURRENCY=2 the compiled workers serve the same', async () => {
    const { child, url } = await startServer({ WEB_CONCURRENCY: '2' });
    try {
      // The primary migrated (nothing left to do) and forked; the workers share the port.
      await expectServing(url);
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });
});
