/**
 * The device authorization grant (RFC 8628) as a TV app or a command-line tool uses it: the device asks for a
 * code (openid-client), shows it, and polls; a person types it on their phone or laptop at /device, checks the
 * confirmation page, signs in and consents; the device's next poll gets its tokens. Also: a cancelled or denied
 * request, codes used twice, a link with the code in it, clients that may not use the grant, and the limit on
 * guessing codes. The server sits "behind a proxy" (PROXY=true), so each test's person speaks from an address of
 * its own.
 */
import * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { DEVICE_CODE_GRANT } from '../../src/clients/clients.js';
import { postgresUrl } from '../support/environment.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { codeAt, newTotpSecret } from '../../src/accounts/totp.js';
import { type Fixtures, PASSWORD, createServiceClient, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { BrowserAt, type HtmlForm, type Page, type SignInOptions, type UserAgent, parseForms, passSignInPages } from '../support/user-agent.js';

/** The fourth wrong code (or password) from one address locks it. */
const LIMITS = { PROXY: 'true', LOGIN_MAX_FAILURES_PER_IP: '3', LOGIN_LOCK: '60' };

let server: TestServer;
let user: Fixtures;
let device: oidc.Configuration;
let deviceClientId: string;
let addresses = 0;
/** A person's browser at an address no other test uses. */
const person = () => new BrowserAt(`198.51.100.${++addresses}`);

beforeAll(async () => {
  server = await startTestServer({ env: LIMITS });
  user = await createUser(server);
  const { client } = await server.services.clients.create({ type: 'device', name: 'Living-room TV' });
  deviceClientId = client.clientId;
  device = await discover(server, deviceClientId, undefined, oidc.None());
});
afterAll(() => server?.close());

/** Polls as a real device does, without waiting the 5 s a real one would between polls. */
const poll = (config: oidc.Configuration, started: oidc.DeviceAuthorizationResponse) =>
  oidc.pollDeviceAuthorizationGrant(config, { ...started, interval: 0.05 }, undefined, { signal: AbortSignal.timeout(10_000) });

/** One poll, answered as it is (RFC 8628 §3.5). */
async function pollOnce(deviceCode: string, clientId = deviceClientId, at = server) {
  const response = await fetch(`${at.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: DEVICE_CODE_GRANT, device_code: deviceCode, client_id: clientId }),
  });
  return { status: response.status, body: (await response.json()) as { error?: string; error_description?: string; access_token?: string } };
}

const formTo = (page: Page, suffix: string) => parseForms(page.html).find((form) => form.action.split('?')[0]?.endsWith(suffix));
const text = (page: Page | undefined) => (page?.html ?? '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

/** Opens /device and types `code` into its form; the page that answers. */
async function enterCode(agent: UserAgent, code: string, at = server): Promise<Page> {
  const { page } = await agent.follow(`${at.url}/device`, at.issuer);
  if (!page) throw new Error('/device did not answer with a page');
  const form = formTo(page, '/device');
  if (!form) throw new Error(`no code form on /device: ${text(page)}`);
  const { page: next } = await agent.submit(page, form, { user_code: code }, at.issuer);
  if (!next) throw new Error('entering a code redirected away');
  return next;
}

/** On the confirmation page, presses Continue (or Cancel), then signs in and consents; the last page. */
async function confirmAndSignIn(agent: UserAgent, confirmation: Page, options: Partial<SignInOptions> & { cancel?: boolean } = {}, at = server) {
  const form = formTo(confirmation, '/device');
  if (!form) throw new Error(`no confirmation form: ${text(confirmation)}`);
  const pressed: Record<string, string> = options.cancel ? { abort: 'yes' } : { confirm: 'yes' };
  const step = await agent.submit(confirmation, form, pressed, at.issuer);
  const { step: last } = await passSignInPages(agent, step, at.issuer, { email: user.email, password: 'correct horse battery staple', ...options });
  if (!last.page) throw new Error(`the device flow left the server: ${last.redirectedTo}`);
  return last.page;
}

async function auditEvents(type: string) {
  await server.services.audit.flush();
  return queryAuditEvents(server.services.db, { type, limit: 50 });
}

describe('device authorization grant (RFC 8628)', () => {
  test('discovery names the device authorization endpoint and the grant type', async () => {
    const metadata = device.serverMetadata();
    expect(metadata.device_authorization_endpoint).toBe(`${server.issuer}/device/auth`);
    expect(metadata.grant_types_supported).toContain(DEVICE_CODE_GRANT);
  });

  test('a TV shows a code, a person enters it on another screen, signs in and consents; the TV gets its tokens', async () => {
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'openid profile offline_access' });
    expect(started.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(started.verification_uri).toBe(`${server.issuer}/device`);
    expect(started.expires_in).toBeGreaterThan(590);
    expect(started.interval).toBe(5);
    expect((await pollOnce(started.device_code)).body.error).toBe('authorization_pending');

    const agent = person();
    // Typed the way people type: lower case, without the dash.
    const confirmation = await enterCode(agent, started.user_code.replace('-', '').toLowerCase());
    expect(confirmation.status).toBe(200);
    expect(text(confirmation)).toContain('Living-room TV');
    expect(text(confirmation)).toContain(started.user_code);
    // Where the request came from, for the person to recognise (here: the test process, through no proxy).
    expect(text(confirmation)).toMatch(/The request came from \S+/);
    const done = await confirmAndSignIn(agent, confirmation);
    expect(text(done)).toContain('Device connected');
    expect(text(done)).toContain('Living-room TV is signed in');

    const tokens = await poll(device, started);
    expect(tokens.claims()?.sub).toBe(user.userId);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const info = await oidc.fetchUserInfo(device, tokens.access_token, user.userId);
    expect(info.name).toEqual(expect.any(String));
    // The device keeps itself signed in with the rotating refresh token.
    const refreshed = await oidc.refreshTokenGrant(device, tokens.refresh_token as string);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    // A device code gives tokens once.
    expect((await pollOnce(started.device_code)).body.error).toBe('invalid_grant');

    const approved = (await auditEvents('device_code_approved')).find((event) => event.clientId === deviceClientId);
    expect(approved).toMatchObject({ outcome: 'success', accountId: user.userId });
    const issued = (await auditEvents('token_issued')).find((event) => event.detail?.grantType === DEVICE_CODE_GRANT);
    expect(issued).toMatchObject({ clientId: deviceClientId, accountId: user.userId });
  });

  test('a person with two-step verification types the code from their app after the password; the TV’s ID token says so', async () => {
    const careful = await createUser(server);
    const secret = newTotpSecret();
    expect(await server.services.twoFactor.enroll(careful.userId, secret, codeAt(secret, Date.now()))).toHaveLength(10);
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'openid' });
    const agent = person();
    const confirmation = await enterCode(agent, started.user_code);
    const step = await agent.submit(confirmation, formTo(confirmation, '/device') as HtmlForm, { confirm: 'yes' }, server.issuer);
    const { step: codePage } = await passSignInPages(agent, step, server.issuer, { email: careful.email, password: PASSWORD });
    expect(codePage.page?.html).toContain('<h1>Two-step verification</h1>');
    // The code of the next step: the one of this step was spent setting it up.
    const verified = await agent.submit(codePage.page as Page, formTo(codePage.page as Page, '/totp') as HtmlForm, { code: codeAt(secret, Date.now() + 30_000) }, server.issuer);
    const { step: last } = await passSignInPages(agent, verified, server.issuer, { email: careful.email, password: PASSWORD });
    expect(text(last.page)).toContain('Device connected');
    expect((await poll(device, started)).claims()).toMatchObject({ sub: careful.userId, amr: ['pwd', 'otp', 'mfa'] });
  });

  test('a device asking only for an API scope (no openid: plain OAuth 2.0) gets its access token and no ID token', async () => {
    await server.services.apis.create({ indicator: 'https://tv-api.example.test', name: 'TV API', scopes: ['channels:watch'] });
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'channels:watch', resource: 'https://tv-api.example.test' });
    const agent = person();
    const done = await confirmAndSignIn(agent, await enterCode(agent, started.user_code));
    expect(text(done)).toContain('Device connected');
    const tokens = await poll(device, started);
    expect(tokens.id_token).toBeUndefined();
    expect(tokens.scope).toBe('channels:watch');
  });

  test('the link with the code in it (verification_uri_complete) goes straight to the confirmation', async () => {
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'openid' });
    const agent = person();
    const { page: relay } = await agent.follow(started.verification_uri_complete as string, server.issuer);
    // oidc-provider relays the code in a form that submits itself (the browser test runs its script under our CSP).
    const form = relay && formTo(relay, '/device');
    if (!relay || !form) throw new Error(`no relay form: ${text(relay)}`);
    const { page: confirmation } = await agent.submit(relay, form, {}, server.issuer);
    expect(text(confirmation)).toContain(started.user_code);
    const done = await confirmAndSignIn(agent, confirmation as Page);
    expect(text(done)).toContain('Device connected');
    expect((await poll(device, started)).claims()?.sub).toBe(user.userId);
  });

  test('Cancel on the confirmation page tells the device access_denied, and the code is spent', async () => {
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'openid' });
    const agent = person();
    const cancelled = await confirmAndSignIn(agent, await enterCode(agent, started.user_code), { cancel: true });
    expect(text(cancelled)).toContain('The sign-in was cancelled');
    await expect(poll(device, started)).rejects.toMatchObject({ error: 'access_denied' });
    const again = await enterCode(person(), started.user_code);
    expect(again.status).toBe(400);
    expect(text(again)).toContain('That code was already used');
    expect((await auditEvents('device_code_denied')).some((event) => event.clientId === deviceClientId)).toBe(true);
  });

  test('a sign-in for a device that expired at the login page says to start again on the device (no link: it began there)', async () => {
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'openid' });
    const agent = person();
    const confirmation = await enterCode(agent, started.user_code);
    const form = formTo(confirmation, '/device');
    if (!form) throw new Error('no confirmation form');
    const { page: login } = await agent.submit(confirmation, form, { confirm: 'yes' }, server.issuer);
    const loginForm = login && formTo(login, '/login');
    if (!login || !loginForm) throw new Error(`no login page: ${text(login)}`);
    const uid = new URL(login.url).pathname.split('/')[2] ?? '';
    await (await server.server.provider.Interaction.find(uid))?.destroy();

    const { page: late } = await agent.submit(login, loginForm, { email: user.email, password: 'correct horse battery staple' }, server.issuer);
    expect(late?.status).toBe(400);
    expect(text(late)).toContain('This sign-in to Living-room TV expired before it was finished. Start again on your device.');
    expect(late?.html).not.toMatch(/<a href=/);
  });

  test('denying consent tells the device access_denied', async () => {
    const { client } = await server.services.clients.create({ type: 'device', name: 'Games console' });
    const console = await discover(server, client.clientId, undefined, oidc.None());
    const started = await oidc.initiateDeviceAuthorization(console, { scope: 'openid profile' });
    const agent = person();
    const last = await confirmAndSignIn(agent, await enterCode(agent, started.user_code), { consent: 'deny' });
    expect(text(last)).toContain('The sign-in was cancelled');
    await expect(poll(console, started)).rejects.toMatchObject({ error: 'access_denied' });
  });

  test('a code already approved cannot be entered again by someone else', async () => {
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'openid' });
    const agent = person();
    await confirmAndSignIn(agent, await enterCode(agent, started.user_code));
    const second = await enterCode(person(), started.user_code);
    expect(second.status).toBe(400);
    expect(text(second)).toContain('That code was already used');
  });

  test('a code posted without the page it came from is refused, nothing looked up, and the person can go on', async () => {
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'openid' });
    const agent = person();
    const url = `${server.url}/device`;
    // No session cookie (the session ended, or the post was forged on another site): oidc-provider's form check fails.
    const response = await agent.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user_code: started.user_code, xsrf: 'forged', confirm: 'yes' }),
    });
    const page: Page = { url, status: response.status, html: await response.text(), headers: response.headers };
    expect(page.status).toBe(400);
    expect(text(page)).toContain('The form expired');
    expect((await pollOnce(started.device_code)).body.error).toBe('authorization_pending');
    // Its form carries the code on to a fresh start (GET /device?user_code=…, relayed by a self-submitting form).
    const form = formTo(page, '/device');
    expect(form?.method).toBe('get');
    const { page: relay } = await agent.submit(page, form!, {}, server.issuer);
    const relayForm = relay && formTo(relay, '/device');
    const { page: confirmation } = await agent.submit(relay!, relayForm!, {}, server.issuer);
    expect(text(confirmation)).toContain(started.user_code);
    expect(text(await confirmAndSignIn(agent, confirmation!))).toContain('Device connected');
    expect((await poll(device, started)).claims()?.sub).toBe(user.userId);
  });

  test('clients registered for other flows may not start one, and a device client may not use theirs', async () => {
    const web = await createWebClient(server);
    const service = await createServiceClient(server);
    for (const { clientId, secret } of [web, service]) {
      const response = await fetch(`${server.url}/device/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa(`${clientId}:${secret}`)}` },
        body: 'scope=openid',
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'unauthorized_client' });
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    }
    const authorization = await fetch(
      `${server.url}/auth?${new URLSearchParams({ client_id: deviceClientId, response_type: 'code', scope: 'openid', redirect_uri: 'https://tv.example.test/cb' })}`,
      { redirect: 'manual' },
    );
    expect(authorization.status).toBe(400);
    const credentials = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: deviceClientId }),
    });
    expect(await credentials.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  test('a confidential device client authenticates its requests with its secret', async () => {
    const { client, secret } = await server.services.clients.create({ type: 'device', name: 'Kiosk', tokenEndpointAuthMethod: 'client_secret_basic' });
    expect(secret).toEqual(expect.any(String));
    const kiosk = await discover(server, client.clientId, secret);
    const started = await oidc.initiateDeviceAuthorization(kiosk, { scope: 'openid' });
    const agent = person();
    await confirmAndSignIn(agent, await enterCode(agent, started.user_code));
    expect((await poll(kiosk, started)).claims()?.sub).toBe(user.userId);
    const withoutSecret = await fetch(`${server.url}/device/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: client.clientId, scope: 'openid' }),
    });
    expect(await withoutSecret.json()).toMatchObject({ error: 'invalid_client' });
  });

  test('wrong codes count against the address: after the limit it is locked, even for a right code, until unlocked', async () => {
    const started = await oidc.initiateDeviceAuthorization(device, { scope: 'openid' });
    const guesser = new BrowserAt('203.0.113.9');
    // LOGIN_MAX_FAILURES_PER_IP=3: two wrong codes are answered as such, the third locks the address.
    for (const guess of ['BBBB-BBBB', 'CCCC-CCCC']) {
      const page = await enterCode(guesser, guess);
      expect(page.status).toBe(400);
      // Unknown may also mean long expired (the record is gone), so the message covers both.
      expect(text(page)).toContain('That code is not right, or it has expired. Check the code on your device, or start again there to get a new one.');
    }
    const locking = await enterCode(guesser, 'FFFF-FFFF');
    expect(locking.status).toBe(429);
    expect(text(locking)).toContain('Too many wrong codes or passwords');
    const refused = await enterCode(guesser, started.user_code);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not affected.
    expect((await enterCode(person(), started.user_code)).status).toBe(200);

    const rejected = (await auditEvents('user_code_rejected')).filter((event) => event.ip === '203.0.113.9');
    expect(rejected.map((event) => event.detail?.reason).sort()).toEqual(['locked', 'unknown', 'unknown', 'unknown']);
    const locks = (await auditEvents('sign_in_locked')).filter((event) => event.ip === '203.0.113.9');
    expect(locks).toEqual([expect.objectContaining({ detail: expect.objectContaining({ by: 'ip', via: 'device_code' }) })]);

    // What `ips unlock 203.0.113.9` and DELETE /admin/v1/ips/203.0.113.9/locks do (test/e2e/unlock.test.ts).
    expect((await server.services.locks.unlockIp('203.0.113.9')).signIn).toEqual(expect.any(Date));
    expect((await enterCode(guesser, 'GGGG-GGGG')).status).toBe(400);
  });
});

describe('registering device clients', () => {
  test('a device client is public by default and takes no redirect URIs, back-channel logout or PAR', async () => {
    const { client, secret } = await server.services.clients.create({ type: 'device', name: 'CLI' });
    expect(secret).toBeUndefined();
    expect(client).toMatchObject({ tokenEndpointAuthMethod: 'none', grantTypes: [DEVICE_CODE_GRANT, 'refresh_token'], redirectUris: [] });
    const refusals: [Record<string, unknown>, RegExp][] = [
      [{ redirectUris: ['https://tv.example.test/cb'] }, /device client .* takes no redirect URIs/],
      [{ backchannelLogoutUri: 'https://tv.example.test/logout' }, /back-channel logout is for web clients/],
      [{ requirePar: true }, /a device client sends no authorization requests/],
      [{ allowPasswordGrant: true, firstParty: true }, /password grant is only for first-party web or spa clients/],
    ];
    for (const [extra, reason] of refusals) {
      await expect(server.services.clients.create({ type: 'device', name: 'CLI', ...extra })).rejects.toThrow(reason);
    }
    await expect(server.services.clients.update(client.clientId, { redirectUris: ['https://tv.example.test/cb'] })).rejects.toThrow(/takes no redirect URIs/);
  });

  test('the CLI registers one and prints no secret', async () => {
    const result = await runToEnd('src/cli.ts', ['clients', 'add', '--type', 'device', '--name', 'Terminal app', '--json'], cleanEnvironment(server.env));
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(printed).toMatchObject({ type: 'device', name: 'Terminal app' });
    expect(printed.client_secret).toBeUndefined();
  });
});

/**
 * RFC 8628 §3.5: a device that polls sooner than its interval while the code is pending is told `slow_down`, and
 * must then wait 5 s more. A 1 s interval keeps the test short; polls within a second of the last are too soon.
 * With Redis and without (the counts are then kept in the SQL database).
 */
describe.each([
  { stores: 'Redis', redis: true },
  { stores: 'the SQL database alone', redis: false },
])('polling pace, counted in $stores', ({ redis }) => {
  let paced: TestServer;
  let tv: oidc.Configuration;
  let tvClientId: string;
  let owner: Fixtures;

  beforeAll(async () => {
    paced = await startTestServer({ redis, env: { PROXY: 'true', DEVICE_POLL_INTERVAL: '1', DEVICE_CODE_TTL: '2m' } });
    owner = await createUser(paced);
    const { client } = await paced.services.clients.create({ type: 'device', name: 'Bedroom TV' });
    tvClientId = client.clientId;
    tv = await discover(paced, tvClientId, undefined, oidc.None());
  });
  afterAll(() => paced?.close());

  const pending = async () => {
    const started = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    return { started, poll: () => pollOnce(started.device_code, tvClientId, paced) };
  };
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  test('the device is told its interval and the code lifetime set; a device that keeps the interval is never told off', async () => {
    const { started, poll } = await pending();
    expect(started.interval).toBe(1);
    expect(started.expires_in).toBeGreaterThan(110);
    expect(started.expires_in).toBeLessThanOrEqual(120);
    for (let polls = 0; polls < 3; polls++) {
      if (polls > 0) await pause(1_050);
      expect(await poll()).toEqual({ status: 400, body: expect.objectContaining({ error: 'authorization_pending' }) });
    }
  });

  test('a device that polls too soon gets slow_down, and 5 s more to wait each time', async () => {
    const { poll } = await pending();
    expect((await poll()).body.error).toBe('authorization_pending');
    const tooSoon = await poll();
    expect(tooSoon).toEqual({ status: 400, body: { error: 'slow_down', error_description: 'polling too often: wait at least 6 seconds between polls' } });
    // Past the first interval, but not the 6 s it was told to keep now.
    await pause(1_100);
    expect((await poll()).body).toMatchObject({ error: 'slow_down', error_description: expect.stringContaining('11 seconds') });
  });

  test('once the person has approved, the next poll gets the tokens however soon it comes', async () => {
    const { started, poll } = await pending();
    expect((await poll()).body.error).toBe('authorization_pending');
    const agent = person();
    await confirmAndSignIn(agent, await enterCode(agent, started.user_code, paced), { email: owner.email }, paced);
    const answered = await poll();
    expect(answered.status).toBe(200);
    expect(answered.body.access_token).toEqual(expect.any(String));
  });

  test('openid-client, polling at the interval it was given, gets its tokens', async () => {
    const started = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const tokens = oidc.pollDeviceAuthorizationGrant(tv, started, undefined, { signal: AbortSignal.timeout(15_000) });
    await pause(2_500);
    const agent = person();
    await confirmAndSignIn(agent, await enterCode(agent, started.user_code, paced), { email: owner.email }, paced);
    expect((await tokens).claims()?.sub).toBe(owner.userId);
  });

  // Where the counts live in the SQL database, its table can be taken away to see the store fail.
  if (!redis) {
    test('a store that fails leaves the answer authorization_pending, never a server error', async () => {
      const { poll } = await pending();
      await paced.services.db.raw('alter table rate_limits rename to rate_limits_away');
      try {
        for (let polls = 0; polls < 2; polls++) {
          expect(await poll()).toEqual({ status: 400, body: expect.objectContaining({ error: 'authorization_pending' }) });
        }
      } finally {
        await paced.services.db.raw('alter table rate_limits_away rename to rate_limits');
      }
      // Counted again once the table is back.
      expect((await poll()).body.error).toBe('authorization_pending');
      expect((await poll()).body.error).toBe('slow_down');
    });
  }

  // A second instance needs PostgreSQL to share.
  (postgresUrl ? test : test.skip)('every instance keeps the same count', async () => {
    const second = await startTestServer({ instanceOf: paced });
    try {
      const { started, poll } = await pending();
      expect((await poll()).body.error).toBe('authorization_pending');
      expect((await pollOnce(started.device_code, tvClientId, second)).body.error).toBe('slow_down');
    } finally {
      await second.close();
    }
  });
});
