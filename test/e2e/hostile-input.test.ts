/**
 * Hostile input: ten thousand generated malformed requests across every endpoint (bad encodings, oversized and
 * duplicated parameters, wrong content types, truncated and forged JWTs, SQL and template injection strings,
 * huge headers, odd methods). None may get a 5xx or a stack trace, and the server must still serve a whole
 * login afterwards. The generator is seeded, so a failure names a request that can be replayed.
 */
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { createUser, createServiceClient, createWebClient, discover, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { UserAgent } from '../support/user-agent.js';

const REQUESTS = 10_000;
const CONCURRENCY = 16;
const STACK_TRACE = /\n\s+at .+[(/].+:\d+:\d+/;

/** mulberry32: small, seeded, good enough to pick test cases. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const b64 = (value: string) => Buffer.from(value).toString('base64url');

const NASTY_VALUES = [
  "' OR '1'='1",
  "1; DROP TABLE users; --",
  "admin'--",
  '{{7*7}}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, literally
  '${7*7}',
  '{% for x in range(999999999) %}x{% endfor %}',
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  '%00',
  '%ZZ',
  '%C0%AE%C0%AE/',
  '..%2F..%2Fetc%2Fpasswd',
  '\u0000',
  '\uFFFF\uD800',
  'null',
  'undefined',
  '[]',
  '{}',
  '-1',
  '1e999',
  'a'.repeat(5000),
  'x'.repeat(70_000),
  'http://evil.example.test/',
  'javascript:alert(1)',
  'openid openid openid',
  ' ',
  '',
];

const JWTS = [
  `${b64('{"alg":"none"}')}.${b64('{"sub":"admin"}')}.`,
  `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64('{"sub":"admin","exp":9999999999}')}.${b64('forged')}`,
  `${b64('{"alg":"RS256","kid":"../../etc/passwd"}')}.${b64('{}')}.${b64('x')}`,
  'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0',
  'eyJ',
  'a.b.c.d.e',
  `${b64('{"alg":"RS256","jku":"http://evil.example.test/jwks"}')}.${b64('{}')}.sig`,
];

const PARAMETERS = [
  'client_id', 'response_type', 'scope', 'redirect_uri', 'state', 'nonce', 'code_challenge', 'code_challenge_method',
  'prompt', 'max_age', 'login_hint', 'id_token_hint', 'request', 'request_uri', 'claims', 'resource', 'grant_type',
  'code', 'code_verifier', 'refresh_token', 'client_secret', 'client_assertion', 'client_assertion_type', 'token',
  'token_type_hint', 'post_logout_redirect_uri', 'email', 'password', 'csrf', 'logout', 'xsrf', 'ui_locales',
  'credential', 'challenge', 'name', 'current', 'passkey', 'remember',
];

interface Case {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

function generator(seed: number, known: { clientId: string; serviceId: string; uid: string }) {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const value = () => {
    const roll = next();
    if (roll < 0.15) return pick(JWTS);
    if (roll < 0.25) return pick([known.clientId, known.serviceId, 'code', 'S256', 'plain', 'client_credentials', 'authorization_code', 'refresh_token']);
    return pick(NASTY_VALUES);
  };
  const query = () => {
    const pairs: string[] = [];
    const count = Math.floor(next() * 8);
    for (let index = 0; index < count; index++) {
      const name = next() < 0.9 ? pick(PARAMETERS) : encodeURIComponent(pick(NASTY_VALUES).toWellFormed()).slice(0, 100);
      const raw = value();
      // Mostly encoded, sometimes raw (bad encodings), sometimes duplicated or array-shaped.
      // (Raw values keep to printable ASCII: a client library cannot send anything else in a request line.)
      const encoded = next() < 0.8 ? encodeURIComponent(raw.toWellFormed()) : raw.replace(/[^\x21-\x7e]/g, '');
      pairs.push(`${next() < 0.1 ? `${name}[]` : name}=${encoded}`);
      if (next() < 0.15) pairs.push(`${name}=${encodeURIComponent(value().toWellFormed())}`);
    }
    return pairs.join('&');
  };
  const paths = [
    '/auth', '/token', '/token/introspection', '/token/revocation', '/me', '/jwks', '/.well-known/openid-configuration',
    '/.well-known/oauth-authorization-server', '/session/end', '/session/end/confirm', '/session/end/success',
    `/interaction/${known.uid}`, `/interaction/${known.uid}/login`, `/interaction/${known.uid}/confirm`,
    `/interaction/${known.uid}/abort`, `/interaction/${known.uid}/passkey`, `/interaction/${known.uid}/passkey/options`,
    '/account/passkeys/options', '/account/passkeys/add', '/account/passkeys/remove', '/assets/passkeys.js', '/assets/webauthn.js',
    '/interaction/%00', '/interaction/../../etc/passwd', '/assets/style.css',
    '/assets/../../package.json', '/request', '/reg', '/device/auth', '/%ZZ', '/auth/%E0%A4%A', '/..%2f..%2f',
  ];
  const contentTypes = [
    'application/x-www-form-urlencoded', 'application/json', 'multipart/form-data; boundary=x', 'text/plain',
    'application/xml', 'application/x-www-form-urlencoded; charset=utf-16', 'application/jwt', '', 'garbage/;;;',
  ];
  const authorizations = [
    `Basic ${Buffer.from(`${known.serviceId}:wrong`).toString('base64')}`,
    'Basic !!!',
    'Basic Og==',
    `Basic ${Buffer.from(':').toString('base64')}`,
    `Bearer ${JWTS[0]}`,
    `Bearer ${'A'.repeat(4000)}`,
    'Bearer',
    'DPoP x',
    'Negotiate abc',
  ];
  return (): Case => {
    const method = pick(['GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
    const path = pick(paths);
    const headers: Record<string, string> = {};
    if (next() < 0.4) headers.authorization = pick(authorizations);
    if (next() < 0.2) headers.cookie = `_session=${value()}; _interaction=${value()}; _session.sig=x`.replace(/[^\x20-\x7e]/g, '');
    if (next() < 0.05) headers['x-forwarded-for'] = pick(['1.2.3.4', 'garbage', '::1, 10.0.0.1']);
    if (next() < 0.03) headers['x-huge'] = 'h'.repeat(20_000 + Math.floor(next() * 50_000));
    if (next() < 0.1) headers.accept = pick(['text/html', 'application/json', '*/*', 'image/png']);
    let body: string | undefined;
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      const type = pick(contentTypes);
      if (type) headers['content-type'] = type;
      const roll = next();
      body = roll < 0.6 ? query() : roll < 0.8 ? JSON.stringify({ grant_type: value(), client_id: value() }) : roll < 0.9 ? pick(NASTY_VALUES) : '%%%';
    }
    const search = method === 'GET' || next() < 0.2 ? query() : '';
    return { method, path: search ? `${path}?${search}` : path, headers, body };
  };
}

/** node:http rather than fetch: it sends what we ask, including header sizes and odd methods fetch refuses. */
function send(port: number, testCase: Case): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port, method: testCase.method, path: testCase.path, headers: testCase.headers, insecureHTTPParser: false },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (body += chunk.length + body.length < 200_000 ? chunk : ''));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', reject);
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      // The server may close the socket on a request Node's parser rejects after answering it.
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') resolve({ status: 400, body: '' });
      else reject(error);
    });
    if (testCase.body !== undefined) request.write(testCase.body);
    request.end();
  });
}

let server: TestServer;
const errorLogs: string[] = [];
beforeAll(async () => {
  const logDestination = new Writable({
    write(chunk, _encoding, done) {
      if (/"level":(50|60)/.test(String(chunk))) errorLogs.push(String(chunk).slice(0, 500));
      done();
    },
  });
  // Client-authentication locks would otherwise lock this test's single IP out of the final login. On localhost,
  // where passkeys are offered, so their routes are reached too.
  server = await startTestServer({
    host: 'localhost',
    env: { CLIENT_AUTH_MAX_FAILURES: '1000000', LOGIN_MAX_FAILURES_PER_IP: '1000000', LOG_LEVEL: 'error' },
    logDestination,
  });
});
afterAll(() => server.close());

test(`${REQUESTS} malformed requests: no 5xx, no stack trace, and a full login still works`, async () => {
  const web = await createWebClient(server);
  const service = await createServiceClient(server);
  // A real interaction id, so the interaction routes are reached past the lookup.
  const agent = new UserAgent();
  const start = await agent.follow(
    `${server.issuer}/auth?client_id=${web.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://app.example.test/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
    server.issuer,
  );
  const uid = new URL(start.page?.url ?? `${server.issuer}/interaction/x`).pathname.split('/')[2] ?? 'x';
  const port = Number(new URL(server.url).port);
  const nextCase = generator(20261125, { clientId: web.clientId, serviceId: service.clientId, uid });

  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let sent = 0;
  const worker = async () => {
    while (sent < REQUESTS) {
      sent += 1;
      const testCase = nextCase();
      const { status, body } = await send(port, testCase).catch((error: Error) => ({ status: -1, body: `client could not read the answer: ${error.message}` }));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status >= 500 || status <= 0 || STACK_TRACE.test(body)) {
        failures.push(`${status} ${testCase.method} ${testCase.path.slice(0, 200)} ${JSON.stringify(testCase.headers).slice(0, 200)} body=${(testCase.body ?? '').slice(0, 200)} → ${body.slice(0, 300)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  expect(failures.slice(0, 10)).toEqual([]);
  expect(errorLogs.slice(0, 5)).toEqual([]); // nothing the server considered its own fault
  expect([...statuses.values()].reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(REQUESTS);
  // Mostly refusals, with a reason: the generator did reach the handlers.
  expect([...statuses.keys()].some((status) => status >= 400 && status < 500)).toBe(true);

  const user = await createUser(server);
  const config = await discover(server, web.clientId, web.secret);
  const { tokens } = await signInAndRedeem(config, user);
  expect(tokens.access_token).toEqual(expect.any(String));
}, 300_000);
