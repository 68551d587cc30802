/**
 * `authz doctor` against the real server, as an operator runs it before a deploy: a child process on the
 * repository's Node that reaches the server over HTTP only. A healthy server passes everything but the
 * single-key warning; a wrong issuer, a wrong secret or an unreachable URL fails with one readable line and exit 1.
 */
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeNewKey } from '../../src/keys/signing-keys.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { API, createServiceClient } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

const STACK_TRACE = /\n\s+at .+:\d+/;
const OPAQUE_API = 'https://opaque-api.example.test';

let server: TestServer;
let client: { clientId: string; secret: string };

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.create({ indicator: API, name: 'API', scopes: ['read'], isDefault: true });
  await server.services.apis.create({ indicator: OPAQUE_API, name: 'Opaque API', scopes: ['read'], accessTokenFormat: 'opaque' });
  client = await createServiceClient(server);
});
afterAll(async () => {
  await server?.close();
});

const doctor = (args: string[], env: Record<string, string> = {}) => runToEnd('src/cli.ts', ['doctor', ...args], cleanEnvironment(env));
/** A port nothing listens on (fetch will not even try port 9: it is on the blocked-port list). */
async function closedPort(): Promise<number> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as AddressInfo;
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  return port;
}

const withClient = () => ['--client-id', client.clientId, '--client-secret', client.secret];

/** `STATUS  check  reason` lines by check name. */
function lines(stdout: string): Map<string, { status: string; reason: string }> {
  const checks = new Map<string, { status: string; reason: string }>();
  for (const line of stdout.split('\n')) {
    const match = /^(PASS|WARN|FAIL) {2}(\S+) +(.*)$/.exec(line);
    if (match) checks.set(match[2] as string, { status: match[1] as string, reason: match[3] as string });
  }
  return checks;
}

describe('authz doctor', () => {
  test('a healthy server passes every check but warns that no next key is staged', async () => {
    const result = await doctor([server.issuer, ...withClient()]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const checks = lines(result.stdout);
    for (const name of ['discovery', 'issuer', 'endpoints', 'rfc8414', 'https', 'keys', 'signing-algs', 'clock', 'client-credentials', 'access-token']) {
      expect([name, checks.get(name)?.status]).toEqual([name, 'PASS']);
    }
    expect(checks.get('key-rotation')).toEqual({ status: 'WARN', reason: expect.stringMatching(/only one RS256 signing key.*no next key is staged.*'authz keys rotate'/) });
    expect(checks.get('access-token')?.reason).toMatch(/JWT \(at\+jwt\) that verifies.*kid \S+, lifetime \d+ s/);
    // The production headers apply to https issuers only (or --production).
    expect(checks.has('hsts')).toBe(false);
    expect(result.stdout).toMatch(new RegExp(`\\n${checks.size - 1} passed, 1 warnings, 0 failed\\n$`));
  });

  test('an opaque token is introspected; credentials may come from the environment; --json for machines', async () => {
    const result = await doctor([server.issuer, '--resource', OPAQUE_API, '--json'], {
      DOCTOR_CLIENT_ID: client.clientId,
      DOCTOR_CLIENT_SECRET: client.secret,
    });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.summary).toEqual({ passed: report.results.length - 1, warnings: 1, failed: 0 });
    expect(report.results).toContainEqual({ check: 'access-token', status: 'PASS', reason: expect.stringMatching(/opaque token that introspects as active/) });
  });

  test('PS256, ES256 and EdDSA keys beside RS256 pass the key checks; a staged RS256 key does not stage the others', async () => {
    const keysDir = await mkdtemp(path.join(tmpdir(), 'authz-doctor-keys-'));
    const now = Date.now();
    await writeNewKey(keysDir, { activatesAt: new Date(now - 3_600_000) });
    await writeNewKey(keysDir, { activatesAt: new Date(now + 3_600_000) });
    for (const alg of ['PS256', 'ES256', 'EdDSA'] as const) await writeNewKey(keysDir, { activatesAt: new Date(now - 3_600_000), alg });
    const many = await startTestServer({ keysDir });
    try {
      const checks = lines((await doctor([many.issuer])).stdout);
      expect(checks.get('keys')).toEqual({ status: 'PASS', reason: expect.stringMatching(/^5 key\(s\) \(1 PS256, 1 ES256, 1 EdDSA\), each with kid, use sig, RSA 2048 bits, public members only$/) });
      const signingAlgs = checks.get('signing-algs');
      expect(signingAlgs?.status).toBe('PASS');
      expect(new Set(/^id tokens are signed with (.*)$/.exec(signingAlgs?.reason ?? '')?.[1]?.split(', '))).toEqual(new Set(['RS256', 'PS256', 'ES256', 'EdDSA']));
      expect(checks.get('key-rotation')).toEqual({
        status: 'WARN',
        reason: expect.stringMatching(/^only one PS256, ES256, EdDSA signing key is published.*'authz keys rotate --alg PS256', 'authz keys rotate --alg ES256', 'authz keys rotate --alg EdDSA'/),
      });
    } finally {
      await many.close();
    }
  });

  test('an issuer that differs from the server’s fails, naming both', async () => {
    const port = new URL(server.issuer).port;
    const result = await doctor([`http://localhost:${port}`]);
    expect(result.code).toBe(1);
    const issuer = lines(result.stdout).get('issuer');
    expect(issuer?.status).toBe('FAIL');
    expect(issuer?.reason).toContain(`"${server.issuer}", not "http://localhost:${port}"`);
    expect(result.stderr).toBe('authz: doctor: 1 check failed\n');
  });

  test('a wrong client secret fails the client-credentials check', async () => {
    const result = await doctor([server.issuer, '--client-id', client.clientId, '--client-secret', 'not-the-secret']);
    expect(result.code).toBe(1);
    expect(lines(result.stdout).get('client-credentials')).toEqual({ status: 'FAIL', reason: expect.stringMatching(/^the token endpoint answered 401 invalid_client/) });
    expect(lines(result.stdout).has('access-token')).toBe(false);
    expect(result.stdout).toMatch(/, 1 failed\n$/);
  });

  test('--production on an http issuer fails https and HSTS, and checks CSP and JWKS caching', async () => {
    const result = await doctor([server.issuer, '--production']);
    expect(result.code).toBe(1);
    const checks = lines(result.stdout);
    expect(checks.get('https')).toEqual({ status: 'FAIL', reason: expect.stringContaining('production needs https') });
    expect(checks.get('hsts')?.status).toBe('FAIL');
    expect(checks.get('csp')).toEqual({ status: 'PASS', reason: expect.stringContaining("frame-ancestors 'none'") });
    expect(checks.get('jwks-cache')).toEqual({ status: 'PASS', reason: expect.stringMatching(/cached for \d+ s/) });
    // A development server answers /metrics to anyone, which a production one must not.
    expect(checks.get('metrics')).toEqual({ status: 'FAIL', reason: expect.stringContaining('/metrics answers anyone') });

    // With METRICS_TOKEN, /metrics asks for it.
    const guarded = await startTestServer({ env: { METRICS_TOKEN: 'metrics-scraper-token-0123456789abcdef' } });
    try {
      const again = lines((await doctor([guarded.issuer, '--production'])).stdout);
      expect(again.get('metrics')).toEqual({ status: 'PASS', reason: `${guarded.issuer}/metrics asks for a bearer token (METRICS_TOKEN)` });
    } finally {
      await guarded.close();
    }
  });

  test('an unreachable URL fails with one clean line', async () => {
    const blocked = await doctor(['http://127.0.0.1:9']);
    expect(blocked.code).toBe(1);
    expect(blocked.stdout).toMatch(/^FAIL {2}discovery {2}GET http:\/\/127\.0\.0\.1:9\/\.well-known\/openid-configuration: unreachable \(.+\)\n0 passed, 0 warnings, 1 failed\n$/);
    expect(blocked.stderr).toBe('authz: doctor: 1 check failed\n');
    expect(blocked.stdout + blocked.stderr).not.toMatch(STACK_TRACE);

    const closed = await doctor([`http://127.0.0.1:${await closedPort()}`]);
    expect(closed.code).toBe(1);
    expect(closed.stdout).toMatch(/^FAIL {2}discovery {2}GET \S+: unreachable \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)\n0 passed, 0 warnings, 1 failed\n$/);
  });

  test('usage errors exit 2: a bad URL, a client id without its secret', async () => {
    const badUrl = await doctor(['not a url']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/"not a url" is not a URL/);
    const halfClient = await doctor([server.issuer, '--client-id', client.clientId]);
    expect(halfClient.code).toBe(2);
    expect(halfClient.stderr).toMatch(/both --client-id and --client-secret/);
  });
});
