/**
 * Production behind a TLS-terminating load balancer, as the README deploys it: ISSUER is https, PROXY=true, and
 * the balancer forwards plain http with X-Forwarded-Proto/-Host/-For. The balancer here is a fetch that sends
 * https://id.example.test/… to the server's port with those headers; the relying party (openid-client) and the
 * browser stand-in know only the https issuer. Plain http that reaches the server itself is refused with a
 * reason, except the public documents and the probes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { writeNewKey } from '../../src/keys/signing-keys.js';
import { describeWithServers } from '../support/environment.js';
import { API, REDIRECT_URI, createServiceClient, createUser, createWebClient, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { waitFor } from '../support/process.js';
import { UserAgent } from '../support/user-agent.js';

const ISSUER = 'https://id.example.test';
const CLIENT_IP = '203.0.113.7';

/** The load balancer: terminates TLS for ISSUER's origin and forwards to `server` over http. */
function loadBalancer(server: TestServer): typeof fetch {
  return (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.origin !== ISSUER) return fetch(request);
    const headers = new Headers(request.headers);
    headers.set('x-forwarded-proto', 'https');
    headers.set('x-forwarded-host', url.host);
    headers.set('x-forwarded-for', CLIENT_IP);
    return fetch(`${server.url}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body: request.body,
      redirect: init?.redirect ?? 'follow',
      duplex: 'half',
    } as RequestInit);
  };
}

/** Log lines the server wrote, parsed. */
function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describeWithServers('production behind a TLS-terminating proxy', () => {
  let keysDir: string;
  const servers: TestServer[] = [];

  beforeAll(async () => {
    keysDir = await mkdtemp(path.join(tmpdir(), 'authz-production-keys-'));
    // Production never generates its first key (keys/README.md).
    await writeNewKey(keysDir, { activatesAt: new Date(Date.now() - 3600_000) });
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await rm(keysDir, { recursive: true, force: true });
  });

  async function startProduction(proxy: boolean, logDestination?: NodeJS.WritableStream, extra: Record<string, string> = {}) {
    const env = { NODE_ENV: 'production', ISSUER, PROXY: String(proxy), LOG_LEVEL: 'warn', ...extra };
    const server = await startTestServer({ keysDir, env, logDestination });
    servers.push(server);
    await server.services.apis.create({ indicator: API, name: 'API', scopes: ['read'], isDefault: false });
    return server;
  }

  test('a relying party that knows only the https issuer signs a user in, gets Secure cookies and HSTS', async () => {
    const server = await startProduction(true);
    const balancer = loadBalancer(server);
    const user = await createUser(server);
    const web = await createWebClient(server);

    const config = await oidc.discovery(new URL(ISSUER), web.clientId, web.secret, undefined, { [oidc.customFetch]: balancer });
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(ISSUER);
    for (const endpoint of [metadata.authorization_endpoint, metadata.token_endpoint, metadata.jwks_uri, metadata.userinfo_endpoint]) {
      expect(endpoint).toMatch(/^https:\/\/id\.example\.test\//);
    }

    // The browser's side of the balancer, recording what the server sets.
    const cookies: string[] = [];
    const hsts: (string | null)[] = [];
    const agent = new UserAgent(async (input, init) => {
      const response = await balancer(input, init);
      cookies.push(...response.headers.getSetCookie());
      hsts.push(response.headers.get('strict-transport-security'));
      return response;
    });
    const { tokens, sawLoginPage } = await signInAndRedeem(config, user, { agent });
    expect(sawLoginPage).toBe(true);
    // openid-client checked the ID token's signature against JWKS and its iss against the https issuer.
    expect(tokens.claims()?.iss).toBe(ISSUER);
    expect(tokens.claims()?.sub).toBe(user.userId);
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, user.userId);
    expect(userinfo.email).toBe(user.email);

    // Every cookie of the sign-in (interaction, session, resume) is Secure and HttpOnly; every answer has HSTS.
    expect(cookies.length).toBeGreaterThanOrEqual(4);
    for (const cookie of cookies) {
      expect(cookie).toMatch(/;\s*secure(;|$)/i);
      expect(cookie).toMatch(/;\s*httponly(;|$)/i);
    }
    expect(hsts.length).toBeGreaterThan(0);
    for (const header of hsts) expect(header).toMatch(/^max-age=\d+/);

    // The audit log has the client's address, the one the balancer appended.
    await server.services.audit.flush();
    const [event] = await server.services.db('audit_events').where({ type: 'sign_in', account_id: user.userId }).select('ip');
    expect(event?.ip).toBe(CLIENT_IP);
  });

  test('/metrics is not served to the internet: none without METRICS_TOKEN, and with it only to the scraper that sends it', async () => {
    const log = captureLog();
    const closed = await startProduction(true, log.destination, { LOG_LEVEL: 'info' });
    const balancer = loadBalancer(closed);
    expect((await balancer(`${ISSUER}/metrics`)).status).toBe(404);
    await waitFor(() => log.lines.find((line) => String(line.msg).startsWith('/metrics is not served on PORT in production')), 'the start-up hint');

    const token = 'metrics-scraper-token-0123456789abcdef';
    const open = loadBalancer(await startProduction(true, undefined, { METRICS_TOKEN: token }));
    const without = await open(`${ISSUER}/metrics`);
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect(await without.json()).toEqual({ error: 'unauthorized', error_description: 'send Authorization: Bearer <METRICS_TOKEN>' });
    expect((await open(`${ISSUER}/metrics`, { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
    expect((await open(`${ISSUER}/metrics`, { headers: { authorization: `Basic ${token}` } })).status).toBe(401);
    const scraped = await open(`${ISSUER}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain('authz_http_requests_total');
  });

  test('plain http is refused with 403 and a reason, not served; the documents and probes stay open; the operator gets a hint once', async () => {
    const log = captureLog();
    const server = await startProduction(true, log.destination);
    const service = await createServiceClient(server);
    const web = await createWebClient(server);
    // A valid authorization request: over plain http it used to fail setting its Secure cookies, with a 500.
    const authorization = new URLSearchParams({
      client_id: web.clientId,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: REDIRECT_URI,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const basic = `Basic ${Buffer.from(`${service.clientId}:${service.secret}`).toString('base64')}`;
    const form = { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' };

    const refused = [
      await fetch(`${server.url}/auth?${authorization}`, { redirect: 'manual' }),
      await fetch(`${server.url}/token`, { method: 'POST', headers: form, body: 'grant_type=client_credentials' }),
      await fetch(`${server.url}/token/introspection`, { method: 'POST', headers: form, body: 'token=anything' }),
      await fetch(`${server.url}/me`, { headers: { authorization: 'Bearer anything' } }),
      await fetch(`${server.url}/interaction/anything`),
      await fetch(`${server.url}/admin/v1/clients`, { headers: { authorization: 'Bearer anything' } }),
    ];
    for (const response of refused) {
      expect(response.status).toBe(403);
      expect(response.headers.get('set-cookie')).toBeNull();
      expect(await response.json()).toEqual({ error: 'invalid_request', error_description: expect.stringMatching(/^HTTPS required/) });
    }

    for (const open of ['/.well-known/openid-configuration', '/jwks', '/healthz', '/readyz']) {
      expect((await fetch(`${server.url}${open}`)).status).toBe(200);
    }
    // Through the balancer the same client gets its token.
    const token = await loadBalancer(server)(`${ISSUER}/token`, { method: 'POST', headers: form, body: 'grant_type=client_credentials' });
    expect(token.status).toBe(200);

    const hints = log.lines.filter((line) => String(line.msg).startsWith('refused a plain-http request'));
    expect(hints).toHaveLength(1);
    expect(hints[0]?.msg).toMatch(/did not send X-Forwarded-Proto: https/);
  });

  test('without PROXY an X-Forwarded-Proto header is not believed: anyone could send it', async () => {
    const log = captureLog();
    const server = await startProduction(false, log.destination);
    const spoofed = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'x-forwarded-proto': 'https', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(spoofed.status).toBe(403);
    expect(((await spoofed.json()) as { error_description: string }).error_description).toMatch(/^HTTPS required/);
    const hint = log.lines.find((line) => String(line.msg).startsWith('refused a plain-http request'));
    expect(hint?.msg).toMatch(/set PROXY=true/);
  });

  test('without SMTP_URL no mail is sent: the login page offers no "Forgot your password?", and the reset page says why', async () => {
    const log = captureLog();
    // Registration open without mail: the operator is warned that new accounts could never confirm their address.
    const server = await startProduction(true, log.destination, { REGISTRATION: 'open' });
    expect(log.lines.map((line) => line.msg)).toContain('REGISTRATION=open without SMTP_URL: new accounts cannot confirm their address or reset a forgotten password');
    const web = await createWebClient(server);
    const agent = new UserAgent(loadBalancer(server));
    const authorize = new URL(`${ISSUER}/auth`);
    authorize.search = new URLSearchParams({ client_id: web.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString();
    const { page: login } = await agent.follow(authorize.href, ISSUER);
    expect(login?.html).toContain('action="/interaction/');
    expect(login?.html).not.toContain('Forgot your password?');
    const { page: reset } = await agent.follow(`${ISSUER}/account/password-reset`, ISSUER);
    expect(reset?.status).toBe(404);
    expect(reset?.html).toContain('This server does not send mail, so this cannot be done by mail. Ask your administrator.');
  });
});
