/**
 * Dynamic client registration (RFC 7591) and its management (RFC 7592), over HTTP: apps register themselves with
 * openid-client's `dynamicClientRegistration`, as an MCP client or any RP that configures itself from discovery
 * would, then sign people in. One server lets anyone register (CLIENT_REGISTRATION=open), the other only holders
 * of an initial access token from `authz clients registration-token` (token).
 */
import * as oidc from 'openid-client';
import { queryAuditEvents } from '../../src/audit/audit-query.js';
import { adminApiOf } from '../support/admin-api.js';
import { DocumentedResponses } from '../support/documented-responses.js';
import { API, PASSWORD, REDIRECT_URI, createUser, signInAndRedeem } from '../support/relying-party.js';
import { UserAgent, signIn } from '../support/user-agent.js';
import { cleanEnvironment, runToEnd, waitFor } from '../support/process.js';
import { type TestServer, startTestServer } from '../support/server.js';

let open: TestServer;
let byToken: TestServer;

beforeAll(async () => {
  [open, byToken] = await Promise.all([startTestServer({ env: { CLIENT_REGISTRATION: 'open', CLIENT_REGISTRATION_UNUSED_TTL: '30d', PRUNE_INTERVAL: '1' } }), startTestServer({ env: { CLIENT_REGISTRATION: 'token' } })]);
  await byToken.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read', 'messages:write'], isDefault: true });
});
afterAll(async () => {
  await open?.close();
  await byToken?.close();
});

const insecure = { execute: [oidc.allowInsecureRequests] };

/** A registration as openid-client makes it (discovery first), with `metadata` and the given options. */
function register(server: TestServer, metadata: Partial<oidc.ClientMetadata>, options: { auth?: oidc.ClientAuth; initialAccessToken?: string } = {}) {
  return oidc.dynamicClientRegistration(new URL(server.issuer), metadata, options.auth, { ...insecure, initialAccessToken: options.initialAccessToken });
}

/** A raw request to the registration endpoint: status, headers and JSON. */
async function post(server: TestServer, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const response = await fetch(`${server.issuer}/reg`, { method: 'POST', headers, body });
  return { status: response.status, headers: response.headers, json: (await response.json()) as Record<string, unknown> };
}

async function manage(uri: string, token: string, method: 'GET' | 'PUT' | 'DELETE', body?: unknown) {
  const response = await fetch(uri, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
}

test('discovery names the registration endpoint only where apps may register', async () => {
  const metadata = async (server: TestServer) => (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  expect((await metadata(open)).registration_endpoint).toBe(`${open.issuer}/reg`);
  expect((await metadata(byToken)).registration_endpoint).toBe(`${byToken.issuer}/reg`);
  const closed = await startTestServer();
  try {
    expect((await metadata(closed)).registration_endpoint).toBeUndefined();
    expect((await post(closed, '{"redirect_uris":["https://app.example.test/callback"]}')).status).toBe(404);
  } finally {
    await closed.close();
  }
});

test('a public app (an MCP client) registers itself and signs a person in with PKCE, asked for consent on a page that says it registered itself', async () => {
  const rp = await register(open, {
    client_name: 'Claude Desktop',
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    client_uri: 'https://claude.example.test/',
    policy_uri: 'https://claude.example.test/privacy?x="1"&y=<2>',
  });
  const registered = rp.clientMetadata();
  expect(registered).toMatchObject({ client_name: 'Claude Desktop', token_endpoint_auth_method: 'none', response_types: ['code'], redirect_uris: [REDIRECT_URI] });
  expect(registered.client_secret).toBeUndefined();
  expect(registered.registration_client_uri).toBe(`${open.issuer}/reg/${registered.client_id}`);
  expect(typeof registered.registration_access_token).toBe('string');
  const stored = await open.services.clients.require(registered.client_id);
  expect(stored).toMatchObject({ type: 'spa', firstParty: false, name: 'Claude Desktop' });

  const person = await createUser(open);
  const { tokens, sawConsentPage, consentPage } = await signInAndRedeem(rp, person, { scope: 'openid offline_access', prompt: 'consent' });
  expect(tokens.claims()?.sub).toBe(person.userId);
  expect(typeof tokens.refresh_token).toBe('string');
  // A self-registered app is third-party: the person was asked, told so, and shown where the app says it lives.
  expect(sawConsentPage).toBe(true);
  const html = consentPage?.html ?? '';
  expect(html).toContain('Claude Desktop registered itself with this server');
  expect(html).toContain('<a href="https://claude.example.test/" rel="noopener noreferrer">About Claude Desktop</a>');
  expect(html).toContain('<a href="https://claude.example.test/privacy?x=&quot;1&quot;&amp;y=&lt;2&gt;" rel="noopener noreferrer">Its privacy policy</a>');
  expect(html).not.toContain('terms of service');

  const events = await auditOf(open, 'client_registered');
  expect(events.find((event) => event.clientId === registered.client_id)?.detail).toMatchObject({ via: 'open', kind: 'spa', name: 'Claude Desktop' });
});

test('a desktop app sent back to loopback is a native app (RFC 8252): any port on the way back, and consent each time', async () => {
  const rp = await register(open, { client_name: 'Desktop', redirect_uris: ['http://127.0.0.1:8123/callback'], token_endpoint_auth_method: 'none' });
  expect(rp.clientMetadata().application_type).toBe('native');
  const person = await createUser(open);
  const agent = new UserAgent();
  for (const port of [51234, 51235]) {
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256', state: 's' });
    const { redirectedTo, sawConsentPage } = await signIn(agent, url.href, { email: person.email, password: PASSWORD });
    // Signed in already the second time, yet asked again: a native app cannot prove who it is.
    expect(sawConsentPage).toBe(true);
    expect(redirectedTo?.origin).toBe(`http://127.0.0.1:${port}`);
    const tokens = await oidc.authorizationCodeGrant(rp, redirectedTo as URL, { pkceCodeVerifier: codeVerifier, expectedState: 's' }, { redirect_uri: redirectUri });
    expect(tokens.claims()?.sub).toBe(person.userId);
  }
});

test('a confidential web app registers, gets its secret once, and uses it at the token endpoint; unknown metadata is ignored', async () => {
  const rp = await register(open, { redirect_uris: [REDIRECT_URI], client_uri: 'https://shop.example.test', contacts: ['dev@shop.example.test'], flavour: 'mint' } as Partial<oidc.ClientMetadata>);
  const registered = rp.clientMetadata();
  expect(registered).toMatchObject({
    token_endpoint_auth_method: 'client_secret_basic',
    client_secret_expires_at: 0,
    client_name: 'An app at app.example.test',
    client_uri: 'https://shop.example.test',
    contacts: ['dev@shop.example.test'],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  expect(typeof registered.client_secret).toBe('string');
  expect(typeof registered.client_id_issued_at).toBe('number');
  expect(registered.flavour).toBeUndefined();
  const person = await createUser(open);
  const { tokens } = await signInAndRedeem(rp, person);
  expect(tokens.claims()?.sub).toBe(person.userId);
});

test('the registration access token reads, replaces and deletes its registration (RFC 7592), and nothing else', async () => {
  const rp = await register(open, { client_name: 'Notes', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'client_secret_post' });
  const { client_id: clientId, client_secret: secret, registration_client_uri: uri, registration_access_token: token } = rp.clientMetadata() as Record<string, string> as {
    client_id: string;
    client_secret: string;
    registration_client_uri: string;
    registration_access_token: string;
  };

  const read = await manage(uri, token, 'GET');
  expect(read.status).toBe(200);
  expect(read.headers.get('cache-control')).toBe('no-store');
  expect(read.json).toMatchObject({ client_id: clientId, client_name: 'Notes', token_endpoint_auth_method: 'client_secret_post', registration_access_token: token, registration_client_uri: uri });
  // The secret is kept only as a hash: it is not answered again.
  expect(read.json.client_secret).toBeUndefined();

  // A wrong token, another client's token, or none: the same 401, which says nothing about the client.
  const other = (await register(open, { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' })).clientMetadata() as unknown as { registration_access_token: string };
  for (const [target, presented] of [
    [uri, 'not-a-token'],
    [uri, other.registration_access_token],
    [`${open.issuer}/reg/nobody`, token],
  ] as const) {
    const refused = await manage(target, presented, 'GET');
    expect(refused.status).toBe(401);
    expect(refused.json.error).toBe('invalid_token');
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
  }
  expect((await fetch(uri)).headers.get('www-authenticate')).toBe('Bearer');

  // Replaced: a new name and redirect URI; the old URI no longer works for it.
  const next = 'https://app.example.test/new-callback';
  const replaced = await manage(uri, token, 'PUT', { client_id: clientId, client_secret: secret, client_name: 'Notes 2', redirect_uris: [next], token_endpoint_auth_method: 'client_secret_post', policy_uri: 'https://app.example.test/privacy' });
  expect(replaced.status).toBe(200);
  expect(replaced.json).toMatchObject({ client_name: 'Notes 2', redirect_uris: [next], policy_uri: 'https://app.example.test/privacy' });
  expect(await open.services.clients.require(clientId)).toMatchObject({ name: 'Notes 2', redirectUris: [next] });
  // What cannot change, or must not be sent, is refused by name.
  for (const [body, said] of [
    [{ client_id: clientId, redirect_uris: [next], token_endpoint_auth_method: 'none' }, 'token_endpoint_auth_method: cannot change'],
    [{ client_id: clientId, redirect_uris: [next], token_endpoint_auth_method: 'client_secret_post', client_secret: 'wrong' }, 'client_secret: is not this client’s'],
    [{ client_id: 'another', redirect_uris: [next] }, 'client_id: must be this client’s'],
    [{ client_id: clientId, redirect_uris: [next], registration_access_token: token, token_endpoint_auth_method: 'client_secret_post' }, 'registration_access_token: is the server’s to issue'],
    [{ client_id: clientId, redirect_uris: ['http://evil.example.test/cb'], token_endpoint_auth_method: 'client_secret_post' }, 'redirect_uris: http://evil.example.test/cb must use https'],
  ] as const) {
    const refused = await manage(uri, token, 'PUT', body);
    expect(refused.status).toBe(400);
    expect(String(refused.json.error_description)).toContain(said);
  }

  const deleted = await manage(uri, token, 'DELETE');
  expect(deleted.status).toBe(204);
  expect(await open.services.clients.find(clientId)).toBeUndefined();
  expect((await manage(uri, token, 'GET')).status).toBe(401);
  // The client is gone at the token endpoint too.
  const tokenResponse = await fetch(`${open.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', redirect_uri: next, client_id: clientId, client_secret: secret }),
  });
  expect(((await tokenResponse.json()) as { error: string }).error).toBe('invalid_client');
});

test('an app registers for signed userinfo (userinfo_signed_response_alg) and gets its userinfo as a JWT; the signing algorithms are answered back', async () => {
  const rp = await register(open, { redirect_uris: [REDIRECT_URI], client_name: 'Signed', userinfo_signed_response_alg: 'RS256', authorization_signed_response_alg: 'RS256' });
  const registered = rp.clientMetadata();
  expect(registered).toMatchObject({ userinfo_signed_response_alg: 'RS256', authorization_signed_response_alg: 'RS256', introspection_signed_response_alg: 'RS256' });
  expect((await open.services.clients.require(registered.client_id)).signedUserinfo).toBe(true);
  const read = await manage(String(registered.registration_client_uri), String(registered.registration_access_token), 'GET');
  expect(read.json).toMatchObject({ userinfo_signed_response_alg: 'RS256' });

  const user = await createUser(open);
  const { tokens } = await signInAndRedeem(rp, user, { consent: 'allow' });
  const info = await fetch(`${open.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  expect(info.headers.get('content-type')).toMatch(/^application\/jwt/);
  expect(await oidc.fetchUserInfo(rp, tokens.access_token, user.userId)).toMatchObject({ sub: user.userId });

  // Replaced without it (RFC 7592 §2.2): JSON again.
  const { registration_client_uri: uri, registration_access_token: token, client_id_issued_at: _issued, client_secret_expires_at: _expires, userinfo_signed_response_alg: _alg, ...rest } = registered;
  const replaced = await manage(String(uri), String(token), 'PUT', rest);
  expect(replaced.status).toBe(200);
  expect(replaced.json.userinfo_signed_response_alg).toBeUndefined();
  expect((await open.services.clients.require(registered.client_id)).signedUserinfo).toBe(false);
});

test('CLIENT_REGISTRATION_UNUSED_TTL: an app that registered itself and got no token for that long is removed with its grants; one in use and one an administrator registered stay', async () => {
  const { db } = open.services;
  const [inUse, triedOnce] = await Promise.all(['In use', 'Tried once'].map((name) => register(open, { redirect_uris: [REDIRECT_URI], client_name: name })));
  const inUseId = inUse!.clientMetadata().client_id;
  const triedOnceMetadata = triedOnce!.clientMetadata();
  const ours = (await open.services.clients.create({ type: 'web', name: 'Ours', redirectUris: [REDIRECT_URI] })).client.clientId;
  const lastUsed = async (clientId: string) => (await db('client_registrations').select('last_used_at').where({ client_id: clientId }).first())?.last_used_at as Date | null;

  // A token for the app in use records its use (off the request path).
  await signInAndRedeem(inUse!, await createUser(open), { consent: 'allow' });
  await waitFor(async () => (await lastUsed(inUseId)) !== null, 'the use to be recorded');
  expect(await lastUsed(triedOnceMetadata.client_id)).toBeNull();

  // Both registered 40 days ago, and everyone's tokens with them; the one in use got its token just now.
  const fortyDaysAgo = db.raw(`now() - interval '40 days'`);
  await db('client_registrations').whereIn('client_id', [inUseId, triedOnceMetadata.client_id]).update({ created_at: fortyDaysAgo });
  await db('clients').whereIn('client_id', [inUseId, triedOnceMetadata.client_id, ours]).update({ created_at: fortyDaysAgo });
  // The pruning job (every second on this server) removes the app that never got a token.
  await waitFor(async () => (await open.services.clients.find(triedOnceMetadata.client_id)) === undefined, 'the unused app to be removed', 5000);
  const read = await manage(String(triedOnceMetadata.registration_client_uri), String(triedOnceMetadata.registration_access_token), 'GET');
  expect(read.status).toBe(401);
  expect((await auditOf(open, 'client_removed')).find((event) => event.clientId === triedOnceMetadata.client_id)?.detail).toEqual({ by: 'pruning', reason: 'unused', unusedSeconds: 30 * 86_400 });
  expect(await open.services.clients.find(inUseId)).toBeDefined();
  expect(await open.services.clients.find(ours)).toBeDefined();

  // Unused for 40 days as well, the other goes too, with its grant; ours stays.
  const grants = () => db('oidc_models').where({ model: 'Grant' }).whereRaw(`payload->>'clientId' = ?`, [inUseId]).count<{ count: string }[]>('* as count');
  expect(Number((await grants())[0]?.count)).toBe(1);
  await db('client_registrations').where({ client_id: inUseId }).update({ last_used_at: fortyDaysAgo });
  await waitFor(async () => (await open.services.clients.find(inUseId)) === undefined, 'the app no longer used to be removed', 5000);
  expect(Number((await grants())[0]?.count)).toBe(0);
  expect(await open.services.clients.find(ours)).toBeDefined();
});

test('bad metadata is an RFC 7591 error naming the field, never a 500; nothing is left behind', async () => {
  const before = (await open.services.clients.list()).length;
  const cases: [unknown, string, string][] = [
    [{ redirect_uris: ['http://app.example.test/cb'] }, 'invalid_redirect_uri', 'redirect_uris: http://app.example.test/cb must use https'],
    [{ redirect_uris: ['https://app.example.test/cb#x'] }, 'invalid_redirect_uri', 'must not contain a fragment'],
    [{ redirect_uris: [] }, 'invalid_redirect_uri', 'redirect_uris: a web client needs at least one redirect URI'],
    [{ redirect_uris: [REDIRECT_URI], response_types: ['token'] }, 'invalid_client_metadata', 'response_types: only code is offered'],
    [{ redirect_uris: [REDIRECT_URI], grant_types: ['implicit'] }, 'invalid_client_metadata', 'grant_types: implicit is not offered'],
    [{ redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'client_credentials'] }, 'invalid_client_metadata', 'each registered as a client of its own'],
    [{ grant_types: ['client_credentials'], scope: 'messages:read' }, 'invalid_client_metadata', 'client_credentials is registered here only with an initial access token'],
    [{ redirect_uris: [REDIRECT_URI], scope: 'openid admin' }, 'invalid_client_metadata', "scope: admin is the admin API's"],
    [{ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'client_secret_jwt' }, 'invalid_client_metadata', 'token_endpoint_auth_method: client_secret_jwt is not offered'],
    [{ redirect_uris: 'https://app.example.test/cb' }, 'invalid_client_metadata', 'redirect_uris'],
    [{ redirect_uris: [REDIRECT_URI], logo_uri: 'javascript:alert(1)' }, 'invalid_client_metadata', 'logo_uri: must be an https URL'],
    [{ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata', 'jwks: private_key_jwt needs'],
    // This test server may call private networks (as any outside production): no URL it would call, without a token.
    [{ redirect_uris: [REDIRECT_URI], backchannel_logout_uri: 'https://app.example.test/logout' }, 'invalid_client_metadata', 'backchannel_logout_uri: this server may call private networks'],
    [{ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://app.example.test/jwks' }, 'invalid_client_metadata', 'jwks_uri: this server may call private networks'],
    [{ redirect_uris: [REDIRECT_URI], userinfo_signed_response_alg: 'ES384' }, 'invalid_client_metadata', 'userinfo_signed_response_alg: this server signs with RS256, PS256, ES256 or EdDSA only'],
    [{ redirect_uris: [REDIRECT_URI], authorization_signed_response_alg: 'HS256' }, 'invalid_client_metadata', 'authorization_signed_response_alg: this server signs with RS256, PS256, ES256 or EdDSA only'],
    [{ redirect_uris: [REDIRECT_URI], id_token_signed_response_alg: 'ES256' }, 'invalid_client_metadata', 'id_token_signed_response_alg: this server has no ES256 key'],
    [{ redirect_uris: [REDIRECT_URI], id_token_signed_response_alg: 'PS256' }, 'invalid_client_metadata', 'id_token_signed_response_alg: this server has no PS256 key'],
    [
      { redirect_uris: [REDIRECT_URI], id_token_signed_response_alg: 'RS256', userinfo_signed_response_alg: 'ES256' },
      'invalid_client_metadata',
      'userinfo_signed_response_alg: everything signed for one client is signed with one algorithm here: give the same as id_token_signed_response_alg',
    ],
  ];
  for (const [body, error, said] of cases) {
    const refused = await post(open, JSON.stringify(body));
    expect({ body, status: refused.status, error: refused.json.error }).toEqual({ body, status: 400, error });
    expect(String(refused.json.error_description)).toContain(said);
  }
  expect((await post(open, '[1]')).json.error_description).toBe('the metadata must be a JSON object');
  expect((await post(open, '{"redirect_uris":')).json.error_description).toBe('the metadata is not valid JSON');
  expect((await post(open, 'redirect_uris=x', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
  expect((await post(open, JSON.stringify({ redirect_uris: [REDIRECT_URI], client_name: 'x'.repeat(70_000) }))).status).toBe(400);
  // With `open`, a token presented is still checked.
  const forged = await post(open, JSON.stringify({ redirect_uris: [REDIRECT_URI] }), { 'content-type': 'application/json', authorization: 'Bearer forged' });
  expect(forged.status).toBe(401);
  expect((await open.services.clients.list()).length).toBe(before);
});

test('with CLIENT_REGISTRATION=token, an initial access token from the admin API registers as many apps as it says, a service included', async () => {
  const refused = await post(byToken, JSON.stringify({ redirect_uris: [REDIRECT_URI] }));
  expect(refused.status).toBe(401);
  expect(refused.headers.get('www-authenticate')).toBe('Bearer');
  expect(refused.json.error_description).toBe('registration needs an initial access token from an administrator');

  const admin = await adminApiOf(byToken);
  const documented = await DocumentedResponses.fetch(`${byToken.url}/admin/v1/openapi.json`);
  const made = await admin.call('POST', '/client-registration-tokens', { uses: 2, expiresInSeconds: 3600 });
  documented.check('POST', '/client-registration-tokens', made.status, made.body);
  expect(made).toMatchObject({ status: 201, body: { usesLeft: 2, createdBy: 'admin-api' } });
  const { initialAccessToken, id } = made.body as { initialAccessToken: string; id: string };

  // A service (client credentials), naming the API scope it needs: it gets tokens for that scope.
  const service = await register(byToken, { grant_types: ['client_credentials'], scope: 'messages:read', client_name: 'Indexer' }, { initialAccessToken });
  const serviceMetadata = service.clientMetadata() as unknown as { client_id: string; client_secret: string };
  const configured = await oidc.discovery(new URL(byToken.issuer), serviceMetadata.client_id, serviceMetadata.client_secret, undefined, insecure);
  const granted = await oidc.clientCredentialsGrant(configured, { resource: API });
  expect(granted.scope).toBe('messages:read');
  expect((await byToken.services.clients.require(serviceMetadata.client_id)).type).toBe('service');
  // A service must name its scopes, and a refused registration uses nothing up.
  const unnamed = await post(byToken, JSON.stringify({ grant_types: ['client_credentials'] }), { 'content-type': 'application/json', authorization: `Bearer ${initialAccessToken}` });
  expect(unnamed.json.error_description).toBe('scope: a client_credentials client names the API scopes it needs');

  const listed = await admin.call('GET', '/client-registration-tokens');
  documented.check('GET', '/client-registration-tokens', listed.status, listed.body);
  expect(listed.body.tokens).toEqual([expect.objectContaining({ id, usesLeft: 1 })]);
  // An app an administrator's token let in is not said to have registered itself; its own links are still shown.
  const vouched = await register(byToken, { redirect_uris: [REDIRECT_URI], client_name: 'Partner', tos_uri: 'https://partner.example.test/terms' }, { initialAccessToken });
  const { consentPage } = await signInAndRedeem(vouched, await createUser(byToken), { scope: 'openid' });
  expect(consentPage?.html).toContain('<a href="https://partner.example.test/terms" rel="noopener noreferrer">Its terms of service</a>');
  expect(consentPage?.html).not.toContain('registered itself');
  // Used up.
  const spent = await post(byToken, JSON.stringify({ redirect_uris: [REDIRECT_URI] }), { 'content-type': 'application/json', authorization: `Bearer ${initialAccessToken}` });
  expect(spent.status).toBe(401);
  expect(spent.json.error_description).toBe('the initial access token is unknown, expired or used up');
  expect((await admin.call('GET', '/client-registration-tokens')).body.tokens).toEqual([]);

  const revocable = (await admin.call('POST', '/client-registration-tokens', {})).body as { id: string; initialAccessToken: string; usesLeft: number };
  expect(revocable.usesLeft).toBe(1);
  expect((await admin.call('DELETE', `/client-registration-tokens/${revocable.id}`)).status).toBe(204);
  expect((await admin.call('DELETE', `/client-registration-tokens/${revocable.id}`)).status).toBe(404);
  expect((await post(byToken, JSON.stringify({ redirect_uris: [REDIRECT_URI] }), { 'content-type': 'application/json', authorization: `Bearer ${revocable.initialAccessToken}` })).status).toBe(401);
  expect((await admin.call('POST', '/client-registration-tokens', { uses: 0 })).status).toBe(400);

  const registered = await auditOf(byToken, 'client_registered');
  expect(registered.map((event) => event.detail?.via)).toEqual([id, id]);
});

test('authz clients registration-token makes an initial access token; registration-tokens lists them, revoke-registration-token deletes one', async () => {
  // The CLI reaches the server's database: Postgres only (always so under CI).
  if (!byToken.env.DATABASE_URL) return;
  const authz = (args: string[]) => runToEnd('src/cli.ts', args, cleanEnvironment(byToken.env));
  const made = await authz(['clients', 'registration-token', '--uses', '3', '--expires-in', '2h', '--json']);
  expect(made.code).toBe(0);
  const { initial_access_token: initialAccessToken, id } = JSON.parse(made.stdout) as { initial_access_token: string; id: string };
  await register(byToken, { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' }, { initialAccessToken });
  const listed = await authz(['clients', 'registration-tokens', '--json']);
  expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id, usesLeft: 2, createdBy: 'cli' })]);
  expect((await authz(['clients', 'revoke-registration-token', id])).code).toBe(0);
  expect(await authz(['clients', 'revoke-registration-token', id])).toMatchObject({ code: 1, stderr: `authz: no initial access token ${id}\n` });
  expect((await authz(['clients', 'registration-token', '--uses', '0'])).code).toBe(2);
});

test('registrations are limited per client address (a script cannot fill the clients table)', async () => {
  let status = 201;
  let count = 0;
  while (status === 201 && count < 40) {
    const response = await fetch(`${open.issuer}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' }) });
    status = response.status;
    count += 1;
    if (status === 429) {
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await response.json()) as { error_description: string }).error_description).toMatch(/^too many registrations from this address/);
    } else await response.body?.cancel();
  }
  expect(status).toBe(429);
  expect(count).toBeLessThanOrEqual(21);
});

async function auditOf(server: TestServer, type: string) {
  await server.services.audit.flush();
  return queryAuditEvents(server.services.db, { type, limit: 100 });
}

test('an app an administrator registers shows the links it was given on the consent page, and is not said to have registered itself', async () => {
  const admin = await adminApiOf(open);
  const documented = await DocumentedResponses.fetch(`${open.url}/admin/v1/openapi.json`);
  const made = await admin.call('POST', '/clients', { type: 'spa', name: 'Partner portal', redirectUris: [REDIRECT_URI], policyUri: 'https://partner.example.test/privacy' });
  documented.check('POST', '/clients', made.status, made.body);
  expect(made.body).toMatchObject({ clientUri: null, policyUri: 'https://partner.example.test/privacy', tosUri: null });
  expect((await admin.call('POST', '/clients', { type: 'spa', name: 'x', redirectUris: [REDIRECT_URI], tosUri: 'javascript:alert(1)' })).status).toBe(400);

  const rp = await oidc.discovery(new URL(open.issuer), made.body.clientId, undefined, oidc.None(), insecure);
  const { consentPage } = await signInAndRedeem(rp, await createUser(open), { scope: 'openid' });
  expect(consentPage?.html).toContain('<a href="https://partner.example.test/privacy" rel="noopener noreferrer">Its privacy policy</a>');
  expect(consentPage?.html).not.toContain('registered itself');

  const changed = await admin.call('PATCH', `/clients/${made.body.clientId}`, { policyUri: null, clientUri: 'https://partner.example.test/' });
  documented.check('PATCH', '/clients/{id}', changed.status, changed.body);
  expect(changed.body).toMatchObject({ clientUri: 'https://partner.example.test/', policyUri: null });

  const cli = await runToEnd('src/cli.ts', ['clients', 'update', made.body.clientId, '--tos-uri', 'https://partner.example.test/terms', '--client-uri', '', '--json'], cleanEnvironment(open.env));
  expect(JSON.parse(cli.stdout)).toMatchObject({ client_uri: null, policy_uri: null, tos_uri: 'https://partner.example.test/terms' });
});

test('CLIENT_REGISTRATION_TRUSTED_HOSTS: an app registering openly names only those hosts (native loopback aside); an initial access token lifts it', async () => {
  const trusting = await startTestServer({ env: { CLIENT_REGISTRATION: 'open', CLIENT_REGISTRATION_TRUSTED_HOSTS: 'app.example.test,*.partner.example.test' } });
  try {
    const ok = await register(trusting, { redirect_uris: ['https://app.example.test/callback', 'https://eu.partner.example.test/cb'], token_endpoint_auth_method: 'none' });
    expect(ok.clientMetadata().client_id).toEqual(expect.any(String));
    const native = await register(trusting, { redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none' });
    expect(native.clientMetadata().application_type).toBe('native');

    const elsewhere = await post(trusting, JSON.stringify({ redirect_uris: ['https://evil.example.test/cb'], token_endpoint_auth_method: 'none' }));
    expect(elsewhere).toMatchObject({
      status: 400,
      json: { error: 'invalid_redirect_uri', error_description: 'redirect_uris: evil.example.test is not a host an app may name without an initial access token from an administrator' },
    });
    const lookalike = await post(trusting, JSON.stringify({ redirect_uris: ['https://notpartner.example.test/cb'], token_endpoint_auth_method: 'none' }));
    expect(lookalike.json.error).toBe('invalid_redirect_uri');
    const policy = await post(trusting, JSON.stringify({ redirect_uris: ['https://app.example.test/cb'], token_endpoint_auth_method: 'none', policy_uri: 'https://bank.example.test/privacy' }));
    expect(policy.json).toMatchObject({ error: 'invalid_client_metadata', error_description: expect.stringMatching(/^policy_uri: bank\.example\.test is not a host/) });

    // Replacing its metadata keeps it under the same rule.
    const registered = ok.clientMetadata();
    const moved = await manage(registered.registration_client_uri as string, registered.registration_access_token as string, 'PUT', {
      client_id: registered.client_id,
      redirect_uris: ['https://evil.example.test/cb'],
      token_endpoint_auth_method: 'none',
    });
    expect(moved.json.error).toBe('invalid_redirect_uri');

    const { initialAccessToken } = (await (await adminApiOf(trusting)).call('POST', '/client-registration-tokens', {})).body as { initialAccessToken: string };
    const vouched = await register(trusting, { redirect_uris: ['https://elsewhere.example.test/cb'], token_endpoint_auth_method: 'none' }, { initialAccessToken });
    expect(vouched.clientMetadata().redirect_uris).toEqual(['https://elsewhere.example.test/cb']);
  } finally {
    await trusting.close();
  }
});
