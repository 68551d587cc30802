/**
 * OpenID Connect Back-Channel Logout 1.0 end to end: relying parties signed in with openid-client, a real HTTP
 * listener standing in for their back-channel endpoints, and logout tokens verified against our JWKS. Tokens go
 * out when the user logs out (RP-initiated logout) and when an administrator ends sessions (admin API, CLI); a
 * relying party that fails or hangs neither fails nor delays the user's logout, and is audited.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { adminApiIndicator } from '../../src/admin/index.js';
import { ClientRepository } from '../../src/clients/clients.js';
import { describeWithServers } from '../support/environment.js';
import { cleanEnvironment, closeHttp, listenHttp, runToEnd, waitFor } from '../support/process.js';
import { type Fixtures, POST_LOGOUT_REDIRECT_URI, REDIRECT_URI, createUser, discover, signInAndRedeem } from '../support/relying-party.js';
import { scrapeMetrics } from '../support/metrics.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { type UserAgent, parseForms } from '../support/user-agent.js';

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** What the relying parties' back-channel endpoint received. */
interface Delivery {
  path: string;
  method: string;
  contentType: string | undefined;
  logoutToken: string | null;
}

/**
 * The relying parties' back ends: the path says how each behaves. /ok/… answers 200, /fail/… 500, and /hang/…
 * never answers.
 */
let backends: { http: Server; url: string };
const deliveries: Delivery[] = [];

function backchannelEndpoint(request: IncomingMessage, response: ServerResponse): void {
  let body = '';
  request.setEncoding('utf8');
  request.on('data', (chunk: string) => (body += chunk));
  request.on('end', () => {
    const path = request.url ?? '';
    deliveries.push({ path, method: request.method ?? '', contentType: request.headers['content-type'], logoutToken: new URLSearchParams(body).get('logout_token') });
    if (path.startsWith('/ok/')) response.writeHead(200).end();
    else if (path.startsWith('/fail/')) response.writeHead(500).end('down for maintenance');
  });
}

let server: TestServer;
let jwks: ReturnType<typeof createRemoteJWKSet>;
let counter = 0;

beforeAll(async () => {
  backends = await listenHttp(backchannelEndpoint);
  server = await startTestServer();
  jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
});
afterAll(async () => {
  await closeHttp(backends?.http);
  await server?.close();
});

interface RelyingParty {
  clientId: string;
  path: string;
  config: oidc.Configuration;
}

/** A first-party web client whose back-channel logout URI behaves as `behaviour` says. */
async function relyingParty(behaviour: 'ok' | 'fail' | 'hang', options: { sessionRequired?: boolean; pairwise?: boolean } = {}): Promise<RelyingParty> {
  counter += 1;
  const path = `/${behaviour}/rp${counter}`;
  const { client, secret } = await server.services.clients.create({
    type: 'web',
    name: `RP ${counter}`,
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_REDIRECT_URI],
    firstParty: true,
    backchannelLogoutUri: `${backends.url}${path}`,
    backchannelLogoutSessionRequired: options.sessionRequired,
    ...(options.pairwise ? { subjectType: 'pairwise' as const } : {}),
  });
  return { clientId: client.clientId, path, config: await discover(server, client.clientId, secret as string) };
}

const deliveryTo = (rp: RelyingParty, count = 1) =>
  waitFor(() => {
    const received = deliveries.filter((delivery) => delivery.path === rp.path);
    return received.length >= count && received;
  }, `${count} logout token(s) at ${rp.path}`);

/** Checks a logout token as a relying party must (Back-Channel Logout 1.0 §2.6) and returns its claims. */
async function verifiedLogoutToken(delivery: Delivery, rp: RelyingParty, user: Fixtures, sub = user.userId) {
  expect(delivery.method).toBe('POST');
  expect(delivery.contentType).toMatch(/^application\/x-www-form-urlencoded/);
  const { payload, protectedHeader } = await jwtVerify(delivery.logoutToken as string, jwks, {
    issuer: server.issuer,
    audience: rp.clientId,
    typ: 'logout+jwt',
  });
  expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'logout+jwt', kid: expect.any(String) });
  expect(payload).toMatchObject({ sub, iat: expect.any(Number), jti: expect.any(String), events: { [LOGOUT_EVENT]: {} } });
  expect(payload.aud).toBe(rp.clientId);
  expect(payload).not.toHaveProperty('nonce');
  return payload;
}

/** RP-initiated logout with the ID token as hint, confirmed on our logout page ("Sign out of all apps", logout=yes). */
async function logOut(agent: UserAgent, rp: RelyingParty, idToken: string) {
  const url = oidc.buildEndSessionUrl(rp.config, { id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI });
  const { page } = await agent.follow(url.href, server.issuer);
  const form = parseForms(page?.html ?? '').find((candidate) => candidate.fields.some((field) => field.name === 'xsrf'));
  if (!page || !form) throw new Error(`no logout confirmation page at ${url.href}`);
  const done = await agent.submit(page, form, { logout: 'yes' }, server.issuer);
  return { redirectedTo: done.redirectedTo?.href };
}

const sidOf = (idToken: string | undefined) => decodeJwt(idToken as string).sid;

async function auditedDeliveries(clientId: string, count = 1) {
  return waitFor(async () => {
    await server.services.audit.flush();
    const rows = await server.services.db('audit_events').where({ type: 'backchannel_logout', client_id: clientId }).orderBy('id');
    return rows.length >= count && rows;
  }, `${count} backchannel_logout audit event(s) for ${clientId}`);
}

describeWithServers('back-channel logout at RP-initiated logout', () => {
  test('the client is POSTed a signed logout token naming the user and the sid of its ID token', async () => {
    const user = await createUser(server);
    const rp = await relyingParty('ok');
    const { tokens, agent } = await signInAndRedeem(rp.config, user);
    const sid = sidOf(tokens.id_token);
    expect(sid).toEqual(expect.any(String));

    const { redirectedTo } = await logOut(agent, rp, tokens.id_token as string);
    expect(redirectedTo).toBe(POST_LOGOUT_REDIRECT_URI);
    const [delivery] = await deliveryTo(rp);
    const claims = await verifiedLogoutToken(delivery as Delivery, rp, user);
    expect(claims.sid).toBe(sid);
    expect(claims.exp).toBeGreaterThan(claims.iat as number);

    const [event] = await auditedDeliveries(rp.clientId);
    expect(event).toMatchObject({ outcome: 'success', account_id: user.userId, detail: { trigger: 'logout', sid } });
    expect(event.request_id).toEqual(expect.any(String));
    const scrape = await (await fetch(`${server.url}/metrics`)).text();
    expect(scrape).toMatch(/^authz_backchannel_logouts_total\{outcome="success"\} [1-9]/m);
  });

  test('a pairwise client is told the sub it knows the user by, not the account id', async () => {
    const user = await createUser(server);
    const rp = await relyingParty('ok', { pairwise: true });
    const { tokens, agent } = await signInAndRedeem(rp.config, user);
    const sub = String(tokens.claims()?.sub);
    expect(sub).not.toBe(user.userId);
    await logOut(agent, rp, tokens.id_token as string);
    const [delivery] = await deliveryTo(rp);
    await verifiedLogoutToken(delivery as Delivery, rp, user, sub);
  });

  test('every client signed in through the session gets its own token, with the sid it was given', async () => {
    const user = await createUser(server);
    const [shop, blog] = [await relyingParty('ok'), await relyingParty('ok')];
    const inShop = await signInAndRedeem(shop.config, user);
    const inBlog = await signInAndRedeem(blog.config, user, { agent: inShop.agent });
    expect(inBlog.sawLoginPage).toBe(false);

    await logOut(inShop.agent, shop, inShop.tokens.id_token as string);
    for (const [rp, idToken] of [
      [shop, inShop.tokens.id_token],
      [blog, inBlog.tokens.id_token],
    ] as const) {
      const received = await deliveryTo(rp);
      expect(received).toHaveLength(1);
      expect((await verifiedLogoutToken(received[0] as Delivery, rp, user)).sid).toBe(sidOf(idToken));
    }
  });

  test('a client registered without session required is sent only the user, and its ID tokens carry no sid', async () => {
    const user = await createUser(server);
    const rp = await relyingParty('ok', { sessionRequired: false });
    const { tokens, agent } = await signInAndRedeem(rp.config, user);
    expect(sidOf(tokens.id_token)).toBeUndefined();
    await logOut(agent, rp, tokens.id_token as string);
    const [delivery] = await deliveryTo(rp);
    expect(await verifiedLogoutToken(delivery as Delivery, rp, user)).not.toHaveProperty('sid');
  });

  test('a client that answers 500 or never answers neither fails nor delays the logout; both are audited and counted as failures', async () => {
    const user = await createUser(server);
    const [failing, hanging] = [await relyingParty('fail'), await relyingParty('hang')];
    const metrics = await scrapeMetrics(server);
    const inFailing = await signInAndRedeem(failing.config, user);
    await signInAndRedeem(hanging.config, user, { agent: inFailing.agent });

    const { redirectedTo } = await logOut(inFailing.agent, failing, inFailing.tokens.id_token as string);
    expect(redirectedTo).toBe(POST_LOGOUT_REDIRECT_URI);
    // The browser is back while the hanging client's delivery is still under way (its outcome, audited when it
    // gives up after 2.5 s, is not there yet): the logout did not wait for it.
    await server.services.audit.flush();
    expect(await server.services.db('audit_events').where({ type: 'backchannel_logout', client_id: hanging.clientId })).toEqual([]);
    expect((await signInAndRedeem(failing.config, user, { agent: inFailing.agent })).sawLoginPage).toBe(true);

    const [failed] = await auditedDeliveries(failing.clientId);
    expect(failed).toMatchObject({ outcome: 'failure', account_id: user.userId, detail: { trigger: 'logout', reason: expect.stringMatching(/500/) } });
    const [timedOut] = await auditedDeliveries(hanging.clientId);
    expect(timedOut).toMatchObject({ outcome: 'failure', detail: { trigger: 'logout', reason: 'no answer within 2.5 s' } });
    expect(await deliveryTo(hanging)).toHaveLength(1);
    const grew = await metrics.since();
    expect(grew('authz_backchannel_logouts_total{outcome="failure"}')).toBe(2);
    expect(grew('authz_backchannel_logouts_total{outcome="success"}')).toBe(0);
  });
});

describeWithServers('back-channel logout when an administrator ends sessions', () => {
  let adminToken: string;
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    const { client, secret } = await server.services.clients.create({ type: 'service', name: 'ops', scope: 'admin' });
    const config = await discover(server, client.clientId, secret as string);
    adminToken = (await oidc.clientCredentialsGrant(config, { resource: adminApiIndicator(server.issuer) })).access_token;
  });

  test('admin API revoke-sessions sends a token for each session, with that session’s sid', async () => {
    const user = await createUser(server);
    const rp = await relyingParty('ok');
    const laptop = await signInAndRedeem(rp.config, user);
    const phone = await signInAndRedeem(rp.config, user);

    expect((await admin('POST', `/users/${user.userId}/revoke-sessions`)).status).toBe(200);
    const received = await deliveryTo(rp, 2);
    const sids = await Promise.all(received.map(async (delivery) => (await verifiedLogoutToken(delivery, rp, user)).sid));
    expect(new Set(sids)).toEqual(new Set([sidOf(laptop.tokens.id_token), sidOf(phone.tokens.id_token)]));
    const events = await auditedDeliveries(rp.clientId, 2);
    for (const event of events) expect(event).toMatchObject({ outcome: 'success', detail: { trigger: 'session_ended', by: 'admin-api' } });
  });

  test('admin API ending one session, and disabling the user, send tokens too', async () => {
    const user = await createUser(server);
    const rp = await relyingParty('ok');
    const { tokens } = await signInAndRedeem(rp.config, user);
    const [session] = ((await (await admin('GET', `/users/${user.userId}/sessions`)).json()) as { sessions: { uid: string }[] }).sessions;
    expect((await admin('DELETE', `/users/${user.userId}/sessions/${session?.uid}`)).status).toBe(204);
    const [ended] = await deliveryTo(rp);
    expect((await verifiedLogoutToken(ended as Delivery, rp, user)).sid).toBe(sidOf(tokens.id_token));

    await signInAndRedeem(rp.config, user);
    expect((await admin('POST', `/users/${user.userId}/disable`)).status).toBe(200);
    await deliveryTo(rp, 2);
  });

  test('the CLI signs and sends them from its own process, and warns about a client that failed', async () => {
    const user = await createUser(server);
    const [rp, failing] = [await relyingParty('ok'), await relyingParty('fail')];
    const { tokens, agent } = await signInAndRedeem(rp.config, user);
    await signInAndRedeem(failing.config, user, { agent });

    const result = await runToEnd('src/cli.ts', ['users', 'revoke-sessions', user.email], cleanEnvironment(server.env));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`logout token delivered to client ${rp.clientId}\n`);
    expect(result.stderr).toMatch(new RegExp(`warning: logout token not delivered to client ${failing.clientId}: .*500`));
    // Delivered before the command ended, signed with the servers' key.
    const [delivery] = deliveries.filter((candidate) => candidate.path === rp.path);
    expect((await verifiedLogoutToken(delivery as Delivery, rp, user)).sid).toBe(sidOf(tokens.id_token));
    const [event] = await auditedDeliveries(rp.clientId);
    expect(event).toMatchObject({ outcome: 'success', detail: { trigger: 'session_ended', by: 'cli' } });
  });

  test('in production private addresses are not called (oidc-provider’s SSRF guard) unless ALLOW_PRIVATE_NETWORK_CALLS is set', async () => {
    // The guard cannot be set up inside jest's module sandbox, so this runs where it is: in the CLI's own process.
    const production = { ...server.env, NODE_ENV: 'production', ISSUER: 'https://id.example.test' };
    const user = await createUser(server);
    const rp = await relyingParty('ok');
    await signInAndRedeem(rp.config, user);
    const guarded = await runToEnd('src/cli.ts', ['users', 'revoke-sessions', user.email], cleanEnvironment(production));
    expect(guarded.code).toBe(0);
    expect(guarded.stderr).toMatch(/not delivered to client .*special-use IP address \(ALLOW_PRIVATE_NETWORK_CALLS=true lets the server call private addresses\)/);
    expect(deliveries.filter((delivery) => delivery.path === rp.path)).toEqual([]);

    await signInAndRedeem(rp.config, user);
    const allowed = await runToEnd('src/cli.ts', ['users', 'revoke-sessions', user.email], cleanEnvironment({ ...production, ALLOW_PRIVATE_NETWORK_CALLS: 'true' }));
    expect(allowed.stdout).toContain(`logout token delivered to client ${rp.clientId}\n`);
  });

  test('the CLI sends nothing, and needs no key, when no client of the session registered a URI', async () => {
    const user = await createUser(server);
    const { client, secret } = await server.services.clients.create({ type: 'web', name: 'Plain', redirectUris: [REDIRECT_URI], firstParty: true });
    await signInAndRedeem(await discover(server, client.clientId, secret as string), user);
    const result = await runToEnd('src/cli.ts', ['users', 'revoke-sessions', user.email], cleanEnvironment({ ...server.env, KEYS_DIR: '/nonexistent' }));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).not.toMatch(/logout token/);
  });
});

describeWithServers('registering a back-channel logout URI', () => {
  const body = (extra: Record<string, unknown>) => ({ type: 'web', name: 'Shop', redirectUris: [REDIRECT_URI], ...extra });
  let repository: ClientRepository;
  beforeAll(() => {
    repository = server.services.clients;
  });

  test('is refused with the reason for a bad URI or a client type that cannot use it', async () => {
    const refusals: [Record<string, unknown>, RegExp][] = [
      [body({ backchannelLogoutUri: 'https://shop.example.test/logout#now' }), /backchannelLogoutUri: .* must not contain a fragment/],
      [body({ backchannelLogoutUri: 'shop.example.test/logout' }), /backchannelLogoutUri: .* is not an absolute URL/],
      [body({ backchannelLogoutUri: 'http://shop.example.test/logout' }), /backchannelLogoutUri: .* must use https/],
      [body({ backchannelLogoutUri: 'ftp://shop.example.test/logout' }), /must use https/],
      [body({ backchannelLogoutUri: '' }), /backchannelLogoutUri: an empty string is no URL/],
      [body({ backchannelLogoutSessionRequired: false }), /backchannelLogoutSessionRequired: .*give backchannelLogoutUri too/],
      [body({ type: 'spa', backchannelLogoutUri: 'https://shop.example.test/logout' }), /back-channel logout is for web clients/],
      [{ type: 'service', name: 'Job', backchannelLogoutUri: 'https://job.example.test/logout' }, /a service client signs no users in/],
    ];
    for (const [input, reason] of refusals) {
      await expect(repository.create(input as Parameters<ClientRepository['create']>[0])).rejects.toThrow(reason);
    }
    const production = new ClientRepository(server.services.db, { peppers: server.config.clientSecretPeppers, production: true });
    await expect(production.create(body({ backchannelLogoutUri: `${backends.url}/ok/prod` }) as never)).rejects.toThrow(/must use https in production/);
  });

  test('the admin API creates, changes and removes it, and answers 400 with the reason for a bad one', async () => {
    const { client: service, secret } = await server.services.clients.create({ type: 'service', name: 'ops', scope: 'admin' });
    const token = (await oidc.clientCredentialsGrant(await discover(server, service.clientId, secret as string), { resource: adminApiIndicator(server.issuer) })).access_token;
    const call = async (method: string, path: string, json: unknown) => {
      const response = await fetch(`${server.url}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(json),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const created = await call('POST', '/clients', body({ backchannelLogoutUri: 'https://shop.example.test/logout' }));
    expect(created).toMatchObject({ status: 201, body: { backchannelLogoutUri: 'https://shop.example.test/logout', backchannelLogoutSessionRequired: true } });
    const id = created.body.clientId as string;

    const bad = await call('PATCH', `/clients/${id}`, { backchannelLogoutUri: 'https://shop.example.test/#x' });
    expect(bad).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: expect.stringMatching(/fragment/) } });
    expect((await call('POST', '/clients', body({ backchannelLogoutUri: 42 }))).status).toBe(400);

    const changed = await call('PATCH', `/clients/${id}`, { backchannelLogoutUri: 'https://shop.example.test/bc', backchannelLogoutSessionRequired: false });
    expect(changed.body).toMatchObject({ backchannelLogoutUri: 'https://shop.example.test/bc', backchannelLogoutSessionRequired: false });
    const removed = await call('PATCH', `/clients/${id}`, { backchannelLogoutUri: null });
    expect(removed.body).toMatchObject({ backchannelLogoutUri: null, backchannelLogoutSessionRequired: false, metadata: {} });

    const document = (await (await fetch(`${server.url}/admin/v1/openapi.json`)).json()) as { components: { schemas: Record<string, { properties: object }> } };
    expect(document.components.schemas.NewClient?.properties).toHaveProperty('backchannelLogoutUri');
    expect(document.components.schemas.ClientChanges?.properties).toHaveProperty('backchannelLogoutSessionRequired');
  });

  test('the CLI registers, shows, changes and removes it; a bad one is one line and exit 1', async () => {
    const env = cleanEnvironment(server.env);
    const authz = (args: string[]) => runToEnd('src/cli.ts', args, env);
    const refused = await authz(['clients', 'add', '--type', 'web', '--name', 'Shop', '--redirect-uri', REDIRECT_URI, '--backchannel-logout-uri', 'http://shop.example.test/bc']);
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toMatch(/^authz: backchannelLogoutUri: http:\/\/shop\.example\.test\/bc must use https .*\n$/);
    const spa = await authz(['clients', 'add', '--type', 'spa', '--name', 'SPA', '--redirect-uri', REDIRECT_URI, '--backchannel-logout-uri', 'https://spa.example.test/bc']);
    expect(spa.code).toBe(1);
    expect(spa.stderr).toMatch(/back-channel logout is for web clients/);

    const added = await authz([
      'clients', 'add', '--type', 'web', '--name', 'Shop', '--redirect-uri', REDIRECT_URI,
      '--backchannel-logout-uri', 'https://shop.example.test/bc', '--no-backchannel-logout-session-required', '--json',
    ]);
    expect(added.code).toBe(0);
    const client = JSON.parse(added.stdout) as { client_id: string };
    expect(client).toMatchObject({ backchannel_logout_uri: 'https://shop.example.test/bc', backchannel_logout_session_required: false });

    const updated = await authz(['clients', 'update', client.client_id, '--backchannel-logout-session-required', '--json']);
    expect(JSON.parse(updated.stdout)).toMatchObject({ backchannel_logout_session_required: true });
    const shown = JSON.parse((await authz(['clients', 'show', client.client_id])).stdout);
    expect(shown).toMatchObject({ backchannel_logout_uri: 'https://shop.example.test/bc', backchannel_logout_session_required: true });

    expect((await authz(['clients', 'update', client.client_id, '--no-backchannel-logout-uri'])).code).toBe(0);
    const listed = JSON.parse((await authz(['clients', 'list', '--json'])).stdout) as { client_id: string }[];
    expect(listed.find((entry) => entry.client_id === client.client_id)).toMatchObject({ backchannel_logout_uri: null, backchannel_logout_session_required: null });
  });
});
