/**
 * OAuth Client ID Metadata Documents, over HTTP: an app's client_id is the URL of its metadata document, served
 * here by a small web server of the test's own (on loopback, which a development server may fetch), and the app
 * signs a person in with openid-client without any registration. Every wrong document is invalid_client, never
 * a 500; and a server that may not call private networks does not fetch a document there.
 */
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { isMetadataDocumentId } from '../../src/client-registration/metadata-documents.js';
import { isSpecialAddress } from '../../src/client-registration/document-fetch.js';
import { REDIRECT_URI, authorizationRequestUrl, createUser, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { UserAgent, textOf } from '../support/user-agent.js';

let server: TestServer;
let documents: Server;
let origin: string;
/** What the test's web server answers at each path: a body and its headers. */
const served = new Map<string, { status?: number; type?: string; body: string; cacheControl?: string }>();
const fetched: string[] = [];
/** The server's log: why each document was refused. */
const logLines: string[] = [];
const refusalOf = (clientId: string) =>
  logLines.map((line) => JSON.parse(line) as { clientId?: string; reason?: string }).find((entry) => entry.clientId === clientId)?.reason;

beforeAll(async () => {
  documents = createServer((request, response) => {
    fetched.push(request.url ?? '');
    const answer = served.get(request.url ?? '');
    if (!answer) return response.writeHead(404).end();
    response.writeHead(answer.status ?? 200, { 'content-type': answer.type ?? 'application/json', ...(answer.cacheControl ? { 'cache-control': answer.cacheControl } : {}) }).end(answer.body);
  });
  await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(documents.address() as AddressInfo).port}`;
  const log = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  server = await startTestServer({ env: { CLIENT_ID_METADATA_DOCUMENTS: 'true', LOG_LEVEL: 'warn' }, logDestination: log });
});
afterAll(async () => {
  await server?.close();
  await new Promise((resolve) => documents?.close(resolve));
});

/** Serves `metadata` at `path` (its client_id the URL unless given) and returns that URL. */
function serve(path: string, metadata: Record<string, unknown>, options: { cacheControl?: string } = {}): string {
  const clientId = `${origin}${path}`;
  served.set(path, { body: JSON.stringify({ client_id: clientId, ...metadata }), cacheControl: options.cacheControl });
  return clientId;
}

const rpFor = (clientId: string) => oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });

/** The authorization request of `clientId`, as far as our first page: its status and text. */
async function authorizationPage(clientId: string, redirectUri = REDIRECT_URI) {
  const url = authorizationRequestUrl(server, clientId, { redirect_uri: redirectUri });
  const { page } = await new UserAgent().follow(url.href, server.issuer);
  return { status: page?.status, text: textOf(page) };
}

test('discovery says client ID metadata documents are taken', async () => {
  const metadata = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
  expect(metadata.client_id_metadata_document_supported).toBe(true);
});

test('an app named by its document signs a person in with PKCE, asked for consent (told the app describes itself), with no registration', async () => {
  const clientId = serve('/mcp/client.json', {
    client_name: 'Inspector',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
    client_uri: 'https://inspector.example.test/',
  });
  const person = await createUser(server);
  const rp = await rpFor(clientId);
  const { tokens, sawConsentPage, consentPage } = await signInAndRedeem(rp, person, { scope: 'openid offline_access', prompt: 'consent' });
  expect(tokens.claims()).toMatchObject({ sub: person.userId, aud: clientId });
  expect(sawConsentPage).toBe(true);
  expect(consentPage?.html).toContain('Inspector registered itself with this server');
  expect(consentPage?.html).toContain('<a href="https://inspector.example.test/" rel="noopener noreferrer">About Inspector</a>');
  // The rotating refresh token works for it too.
  const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
  expect(typeof refreshed.access_token).toBe('string');
  expect(await server.services.clients.find(clientId)).toBeUndefined();
  // Kept, not fetched again at every request.
  expect(fetched.filter((path) => path === '/mcp/client.json').length).toBe(1);
});

test('a document that is wrong, missing or out of reach is invalid_client, never a 500', async () => {
  const cases: [() => string, string][] = [
    [() => { served.set('/wrong-id.json', { body: JSON.stringify({ client_id: 'https://elsewhere.example/app.json', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' }) }); return `${origin}/wrong-id.json`; }, 'client_id: must be the document’s own URL'],
    [() => serve('/secret.json', { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'client_secret_basic' }), 'token_endpoint_auth_method: none or private_key_jwt'],
    [() => serve('/holds-secret.json', { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', client_secret: 'x' }), 'client_secret: a public document cannot hold a secret'],
    [() => serve('/none.json', { token_endpoint_auth_method: 'none' }), 'redirect_uris: a spa client needs at least one redirect URI'],
    [() => serve('/service.json', { grant_types: ['client_credentials'], scope: 'x' }), 'grant_types: client_credentials is registered here only with an initial access token'],
    [() => serve('/admin.json', { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', scope: 'openid admin' }), "scope: admin is the admin API's"],
    [() => `${origin}/missing.json`, 'answered 404'],
    [() => { served.set('/page.html', { type: 'text/html', body: '<html></html>' }); return `${origin}/page.html`; }, 'answered text/html, not JSON'],
    [() => serve('/large.json', { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', client_name: 'x'.repeat(20_000) }), 'is larger than 10240 bytes'],
    [() => { served.set('/moved.json', { status: 302, body: '' }); return `${origin}/moved.json`; }, 'answered 302'],
  ];
  for (const [make, reason] of cases) {
    const clientId = make();
    const page = await authorizationPage(clientId);
    expect({ clientId, status: page.status }).toEqual({ clientId, status: 400 });
    expect(page.text).toContain('invalid_client');
    expect({ clientId, reason: refusalOf(clientId) }).toEqual({ clientId, reason: expect.stringContaining(reason) });
  }
  // A redirect URI the document does not list.
  const listed = serve('/listed.json', { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' });
  const other = await authorizationPage(listed, 'https://evil.example.test/callback');
  expect(other.status).toBe(400);
  expect(other.text).toContain('redirect_uri');
});

test('what counts as a document URL; which addresses are not public', () => {
  expect(isMetadataDocumentId('https://app.example.com/client.json', true)).toBe(true);
  expect(isMetadataDocumentId('https://app.example.com/', true)).toBe(false);
  expect(isMetadataDocumentId('https://app.example.com/a/../client.json', true)).toBe(false);
  expect(isMetadataDocumentId('https://user:pw@app.example.com/client.json', true)).toBe(false);
  expect(isMetadataDocumentId('https://app.example.com/client.json#x', true)).toBe(false);
  expect(isMetadataDocumentId('http://127.0.0.1:8080/client.json', true)).toBe(false);
  expect(isMetadataDocumentId('http://127.0.0.1:8080/client.json', false)).toBe(true);
  expect(isMetadataDocumentId('http://app.example.com/client.json', false)).toBe(false);
  expect(isMetadataDocumentId('Web-App_1', false)).toBe(false);
  for (const address of ['10.1.2.3', '127.0.0.1', '169.254.169.254', '172.20.0.1', '192.168.1.1', '::1', 'fe80::1', 'fd00::1', '::ffff:10.0.0.1', '::ffff:a00:1', '0.0.0.0']) {
    expect({ address, special: isSpecialAddress(address) }).toEqual({ address, special: true });
  }
  for (const address of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '::ffff:93.184.216.34']) {
    expect({ address, special: isSpecialAddress(address) }).toEqual({ address, special: false });
  }
});

test('a server that may not call private networks does not fetch a document there', async () => {
  const guarded = await startTestServer({ env: { CLIENT_ID_METADATA_DOCUMENTS: 'true', ALLOW_PRIVATE_NETWORK_CALLS: 'false' } });
  try {
    const clientId = serve('/guarded.json', { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' });
    const before = fetched.length;
    const { page } = await new UserAgent().follow(authorizationRequestUrl(guarded, clientId).href, guarded.issuer);
    expect(page?.status).toBe(400);
    expect(textOf(page)).toContain('invalid_client');
    expect(fetched.length).toBe(before);
  } finally {
    await guarded.close();
  }
});
