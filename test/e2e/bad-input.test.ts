/**
 * Bad input anywhere gets an OAuth error or a 4xx with a reason: never a 500, never a stack trace.
 */
import { createUser, createWebClient, REDIRECT_URI } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { UserAgent } from '../support/user-agent.js';

let server: TestServer;
let clientId: string;
let secret: string;
beforeAll(async () => {
  server = await startTestServer();
  await createUser(server);
  ({ clientId, secret } = await createWebClient(server));
});
afterAll(() => server.close());

const STACK_TRACE = /\bat [\w.<>]+ \(|node_modules|\.ts:\d+|\.js:\d+/;

async function expectClientError(response: Response) {
  const body = await response.text();
  expect(response.status).toBeGreaterThanOrEqual(400);
  expect(response.status).toBeLessThan(500);
  expect(body).not.toMatch(STACK_TRACE);
  expect(body.length).toBeGreaterThan(0);
  return body;
}

const basic = () => `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;

describe('bad input', () => {
  test.each([
    ['no parameters', ''],
    ['unknown client', '?client_id=nobody&response_type=code&scope=openid&redirect_uri=https://x.test/'],
    ['unregistered redirect_uri', `?client_id=CLIENT&response_type=code&scope=openid&redirect_uri=https://evil.test/`],
    ['duplicated parameters', `?client_id=CLIENT&client_id=CLIENT&response_type=code&scope=openid`],
    ['invalid percent-encoding', `?client_id=%E0%A4%A&response_type=code`],
    ['an oversized parameter', `?client_id=CLIENT&response_type=code&state=${'x'.repeat(20000)}`],
  ])('/auth with %s', async (_name, query) => {
    const response = await fetch(`${server.issuer}/auth${query.replaceAll('CLIENT', clientId)}`, { redirect: 'manual' });
    if (response.status === 303 || response.status === 302) {
      // Errors the client may hear about go back to its redirect_uri, with a reason.
      const location = new URL(response.headers.get('location') ?? '');
      expect(location.href.startsWith(REDIRECT_URI)).toBe(true);
      expect(location.searchParams.get('error')).toEqual(expect.any(String));
    } else {
      await expectClientError(response);
    }
  });

  test.each([
    ['no body', undefined, 'application/x-www-form-urlencoded'],
    ['a JSON body', JSON.stringify({ grant_type: 'client_credentials' }), 'application/json'],
    ['an unknown grant type', 'grant_type=magic', 'application/x-www-form-urlencoded'],
    ['a made-up code', 'grant_type=authorization_code&code=abc&redirect_uri=https://x.test/', 'application/x-www-form-urlencoded'],
    ['a made-up refresh token', 'grant_type=refresh_token&refresh_token=abc', 'application/x-www-form-urlencoded'],
    ['duplicated grant types', 'grant_type=refresh_token&grant_type=client_credentials', 'application/x-www-form-urlencoded'],
    ['broken encoding', 'grant_type=%ZZ', 'application/x-www-form-urlencoded'],
    ['a huge body', `grant_type=client_credentials&scope=${'a'.repeat(200_000)}`, 'application/x-www-form-urlencoded'],
  ])('/token with %s', async (_name, body, contentType) => {
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': contentType, authorization: basic() },
      body,
    });
    const text = await expectClientError(response);
    if (response.headers.get('content-type')?.includes('json')) expect(JSON.parse(text).error).toEqual(expect.any(String));
  });

  test('/token with a malformed Authorization header', async () => {
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic !!!notbase64' },
      body: 'grant_type=client_credentials',
    });
    expect(JSON.parse(await expectClientError(response)).error).toMatch(/invalid_(client|request)/);
  });

  test('no client authentication at all is invalid_client, 401 (RFC 6749 §5.2: "no client authentication included")', async () => {
    for (const endpoint of ['/token', '/token/introspection', '/token/revocation']) {
      const response = await fetch(`${server.issuer}${endpoint}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: endpoint === '/token' ? 'grant_type=client_credentials' : 'token=abc',
      });
      expect(response.status).toBe(401);
      expect(JSON.parse(await response.text())).toMatchObject({ error: 'invalid_client', error_description: expect.any(String) });
    }
  });

  test('a NUL character anywhere (which PostgreSQL cannot store) is a 4xx with a reason, never a 500', async () => {
    const token = (body: string) =>
      fetch(`${server.issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    // An unknown client, as no client id can hold one.
    expect((await token('grant_type=client_credentials&client_id=a%00b')).status).toBe(401);
    expect((await fetch(`${server.issuer}/auth?client_id=a%00b&response_type=code&scope=openid`)).status).toBe(400);
    const answers = await Promise.all([
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic() },
        body: 'grant_type=authorization_code&code=a%00b&redirect_uri=https://x.test/',
      }),
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic() },
        body: `grant_type=client_credentials&resource=${encodeURIComponent('https://api.example.test/\u0000')}`,
      }),
      fetch(`${server.issuer}/auth?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&state=a%00b&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, { redirect: 'manual' }),
      fetch(`${server.issuer}/interaction/a%00b`),
    ]);
    for (const response of answers) expect(response.status).toBeLessThan(500);

    // At the login form: the page says why.
    const agent = new UserAgent();
    const start = await agent.follow(
      `${server.issuer}/auth?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
      server.issuer,
    );
    const login = start.page!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.html)?.[1] ?? '';
    const response = await agent.request(`${login.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, email: 'ada\u0000@example.test', password: 'x' }),
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/not allowed|do not match/);
  });

  test('token responses carry Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1)', async () => {
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic() },
      body: 'grant_type=refresh_token&refresh_token=unknown',
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('pragma')).toBe('no-cache');
  });

  test('/me with a forged bearer token', async () => {
    const response = await fetch(`${server.issuer}/me`, { headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.e30.' } });
    await expectClientError(response);
    expect(response.headers.get('www-authenticate')).toMatch(/invalid_token/);
  });

  test('an unknown interaction gives an error page, not a crash', async () => {
    const response = await fetch(`${server.issuer}/interaction/does-not-exist`);
    const html = await expectClientError(response);
    expect(html).toMatch(/<html/i);
  });

  test('interaction forms reject missing CSRF tokens and odd bodies', async () => {
    const agent = new UserAgent();
    const start = await agent.follow(
      `${server.issuer}/auth?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
      server.issuer,
    );
    const loginPage = start.page!;
    expect(loginPage.status).toBe(200);
    const action = new URL(`${loginPage.url}/login`);
    for (const body of ['email=a@b.c&password=x', 'email[]=a&email[]=b&password=x', '%%%', '']) {
      const response = await agent.request(action.href, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      await expectClientError(response);
    }
  });

  test('unknown paths answer 404 with a reason', async () => {
    const response = await fetch(`${server.issuer}/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: 'not_found' });
  });
});
