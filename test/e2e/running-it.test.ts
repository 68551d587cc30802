/**
 * Starting the server as a user would: the embedded default needs nothing installed and keeps its data across
 * restarts; production refuses to start, one clear line per missing piece.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClientRepository } from '../../src/clients/clients.js';
import { loadConfig } from '../../src/config.js';
import { closeDatabase, openDatabase } from '../../src/store/database.js';
import { cleanEnvironment, closeHttp, freePort, listenHttp, runToEnd, startUntil, stop } from '../support/process.js';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'authz-run-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));


describe('embedded default (no DATABASE_URL, no REDIS_URL)', () => {
  test('starts, generates a key and secrets, picks up a new key on SIGHUP, and keeps its data across a restart', async () => {
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    const env = cleanEnvironment({ PORT: String(port), DATA_DIR: path.join(scratch, 'data'), KEYS_DIR: path.join(scratch, 'keys'), LOG_LEVEL: 'warn' });

    const first = await startUntil('src/main.ts', env, /authz is serving/, 60_000);
    expect(first.stdout).toContain(issuer);
    expect(first.stdout).toMatch(/embedded PGlite/);
    expect(first.stdout).toMatch(/users add/);
    const jwksBefore = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwksBefore.keys).toHaveLength(1);

    // A key written by `authz keys rotate` is published on SIGHUP, without a restart.
    const rotated = await runToEnd('src/cli.ts', ['keys', 'rotate', '--activate-in', '2h'], env);
    expect(rotated.code).toBe(0);
    first.child.kill('SIGHUP');
    let published: string[] = [];
    for (let attempt = 0; attempt < 50 && published.length < 2; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      published = ((await (await fetch(`${issuer}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
    }
    expect(published).toHaveLength(2);
    expect(published[0]).toBe(jwksBefore.keys[0]?.kid); // the old key still signs; the new one waits its turn
    expect(await stop(first.child)).toBe(0);

    expect((await readdir(path.join(scratch, 'keys'))).filter((name) => name.endsWith('.pem'))).toHaveLength(2);
    expect(await readdir(path.join(scratch, 'data'))).toEqual(expect.arrayContaining(['pglite', 'secrets.json']));

    // Register a service client in the stopped server's database, as the CLI would.
    const config = loadConfig(env);
    config.clientSecretPeppers = JSON.parse(
      await (await import('node:fs/promises')).readFile(path.join(scratch, 'data', 'secrets.json'), 'utf8'),
    ).clientSecretPeppers;
    const db = await openDatabase(config.database);
    const { client, secret } = await new ClientRepository(db, { peppers: config.clientSecretPeppers }).create({
      type: 'service',
      name: 'persisted',
    });
    await closeDatabase(db);

    const second = await startUntil('src/main.ts', env, /authz is serving/, 60_000);
    try {
      const jwksAfter = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: { kid: string }[] };
      expect(jwksAfter.keys.map((key) => key.kid)).toEqual(published);
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client.clientId}:${secret}`).toString('base64')}`,
        },
        body: 'grant_type=client_credentials',
      });
      // No API is registered, so the token is opaque, but the client and its secret survived the restart.
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ token_type: 'Bearer' });
    } finally {
      expect(await stop(second.child)).toBe(0);
    }
  });
});

describe('production', () => {
  test('refuses to start and names every missing piece on its own line', async () => {
    const env = cleanEnvironment({ NODE_ENV: 'production', KEYS_DIR: path.join(scratch, 'no-keys'), ISSUER: 'http://id.example.com' });
    const { code, stderr, stdout } = await runToEnd('src/main.ts', [], env);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toMatch(/refusing to start/);
    for (const expected of [/ISSUER must be https/, /DATABASE_URL/, /REDIS_URL/, /COOKIE_SECRETS/, /CLIENT_SECRET_PEPPERS/, /no signing key/]) {
      expect(lines.filter((line) => expected.test(line))).toHaveLength(1);
    }
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  test('a broken key file stops start-up with the file and the problem named', async () => {
    const keysDir = path.join(scratch, 'broken-keys');
    await mkdir(keysDir, { recursive: true });
    await writeFile(path.join(keysDir, '20260101T000000Z.pem'), 'not a key');
    const env = cleanEnvironment({ DATA_DIR: path.join(scratch, 'broken-data'), KEYS_DIR: keysDir, PORT: '0' });
    const { code, stderr } = await runToEnd('src/main.ts', [], env);
    expect(code).toBe(1);
    expect(stderr).toMatch(/refusing to start: .*20260101T000000Z\.pem: is not a PEM private key/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  test.each([
    ['the default schema', undefined],
    ['a schema of its own (DATABASE_SCHEMA)', 'unreachable_schema'],
  ])('a database that cannot be reached stops start-up with one line naming it and the variable to check: %s', async (_, schema) => {
    const nobodyListens = await freePort();
    const env = cleanEnvironment({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${nobodyListens}/test`,
      DATABASE_SCHEMA: schema,
      DATA_DIR: path.join(scratch, 'unreachable-data'),
      KEYS_DIR: path.join(scratch, 'unreachable-keys'),
      PORT: '0',
    });
    const { code, stderr, stdout } = await runToEnd('src/main.ts', [], env);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /(^|\n)authz: failed to start: cannot reach PostgreSQL \(connect ECONNREFUSED 127\.0\.0\.1:\d+\): is it running, and does DATABASE_URL point at it\?\n$/,
    );
    expect(stderr).not.toMatch(/\n\s+at /);
    // What the driver said goes to the log as JSON lines, not as plain text with a stack among them.
    for (const line of stdout.trim().split('\n').filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow();
  });

  test('a port already in use stops start-up with the port and the variable to change', async () => {
    const { http } = await listenHttp();
    const { port } = http.address() as AddressInfo;
    try {
      const env = cleanEnvironment({
        DATA_DIR: path.join(scratch, 'busy-port-data'),
        KEYS_DIR: path.join(scratch, 'busy-port-keys'),
        HOST: '127.0.0.1',
        PORT: String(port),
      });
      const { code, stderr } = await runToEnd('src/main.ts', [], env);
      expect(code).toBe(1);
      expect(stderr).toBe(`authz: failed to start: port ${port} (127.0.0.1) is already in use: stop what listens there, or set PORT\n`);
    } finally {
      await closeHttp(http);
    }
  });

  test('an unsafe setting is named precisely', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ CLIENT_SECRET_PEPPERS: 'no-colon' })).toThrow(/kid:secret/);
  });
});
