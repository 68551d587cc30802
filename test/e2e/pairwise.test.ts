/**
 * Pairwise subject identifiers (OpenID Connect Core §8), as apps see them through openid-client: one person signs
 * in to two pairwise apps of one sector, a pairwise app of another sector and a public app. The apps of one sector
 * agree on the person's `sub`, the other sector's differs, and none is the account id, which the public app gets;
 * ID token, userinfo, introspection and JWT access tokens for an API all say the same `sub` to each app. Redirect
 * URIs on two hosts need a sector identifier URI whose document (served here over HTTP) lists them all, checked
 * when the client is registered and when its redirect URIs change; the sector stays the one fixed then.
 */
import { type Server, createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { adminApiOf } from '../support/admin-api.js';
import { cleanEnvironment, runToEnd } from '../support/process.js';
import { UserAgent, signIn } from '../support/user-agent.js';
import { API, PASSWORD, type Fixtures, createUser, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
let documents: Server;
let documentsUrl: string;
/** What the sector documents answer, by path. */
const served = new Map<string, unknown>();

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read'] });
  documents = createServer((request, response) => {
    const body = served.get(request.url ?? '');
    if (body === undefined) return response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
  documentsUrl = `http://127.0.0.1:${(documents.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => documents.close(resolve));
  await server.close();
});

interface App {
  clientId?: string;
  rp: oidc.Configuration;
  redirectUri: string;
}

async function registerApp(redirectUris: string[], pairwise: { sectorIdentifierUri?: string } | false): Promise<App> {
  const { client, secret } = await server.services.clients.create({
    type: 'web',
    name: 'App',
    redirectUris,
    firstParty: true,
    ...(pairwise ? { subjectType: 'pairwise', ...pairwise } : {}),
  });
  return { clientId: client.clientId, rp: await discover(server, client.clientId, secret as string), redirectUri: redirectUris[0] as string };
}

/** The person signs in to `app` in a browser of their own and the app redeems the code; `resource` asks for a JWT for the API. */
async function signInTo(app: App, user: Fixtures, resource?: string) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(app.rp, {
    redirect_uri: app.redirectUri,
    scope: resource ? 'openid messages:read' : 'openid email',
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...(resource ? { resource } : {}),
  });
  const { redirectedTo } = await signIn(new UserAgent(), url.href, { email: user.email, password: PASSWORD });
  return oidc.authorizationCodeGrant(app.rp, redirectedTo, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, idTokenExpected: true }, resource ? { resource } : undefined);
}

test('apps of one sector agree on a person’s sub, another sector’s differs, and every token and endpoint says the same to each app', async () => {
  const user = await createUser(server);
  const shopA = await registerApp(['https://shop.example.test/callback'], {});
  const shopB = await registerApp(['https://shop.example.test/other-callback'], {});
  const blog = await registerApp(['https://blog.example.test/callback'], {});
  const plain = await registerApp(['https://plain.example.test/callback'], false);

  const subs = await Promise.all([shopA, shopB, blog, plain].map(async (app) => (await signInTo(app, user)).claims()?.sub));
  expect(subs[0]).toBe(subs[1]);
  expect(subs[0]).not.toBe(subs[2]);
  expect(subs[3]).toBe(user.userId);
  expect(subs.slice(0, 3).every((sub) => sub !== user.userId && /^[\w-]{43}$/.test(String(sub)))).toBe(true);

  // The same sub at userinfo and introspection (opaque access token) as in the ID token.
  const tokens = await signInTo(blog, user);
  const sub = String(tokens.claims()?.sub);
  expect(sub).toBe(subs[2]);
  expect((await oidc.fetchUserInfo(blog.rp, tokens.access_token, sub)).sub).toBe(sub);
  expect(await oidc.tokenIntrospection(blog.rp, tokens.access_token)).toMatchObject({ active: true, sub });

  // A JWT access token for an API carries it too: the API sees the app's pairwise user, not the account id.
  const forApi = await signInTo(blog, user, API);
  const payload = JSON.parse(Buffer.from(forApi.access_token.split('.')[1] as string, 'base64url').toString()) as { sub: string; aud: string };
  expect(payload).toMatchObject({ sub, aud: API });
});

test('an administrator finds who an app’s sub is, past a page of other accounts: admin API and `users find-subject`', async () => {
  const user = await createUser(server);
  // More accounts than one batch of the lookup reads, so that it pages.
  const ids = Array.from({ length: 10_050 }, () => randomUUID());
  await server.services.db.batchInsert('users', ids.map((id, index) => ({ id, email: `filler-${index}-${id}@example.test`, roles: [], email_verified: true })), 2000);
  const shop = await registerApp(['https://shop.example.test/callback'], {});
  const plain = await registerApp(['https://plain.example.test/callback'], false);
  const sub = String((await signInTo(shop, user)).claims()?.sub);
  const nobody = 'x'.repeat(43);

  const adminApi = await adminApiOf(server, 'admin:read');
  expect(await adminApi.call('GET', `/clients/${shop.clientId}/subjects/${sub}`)).toMatchObject({ status: 200, body: { id: user.userId, email: user.email } });
  expect(await adminApi.call('GET', `/clients/${plain.clientId}/subjects/${user.userId}`)).toMatchObject({ status: 200, body: { id: user.userId } });
  expect(await adminApi.call('GET', `/clients/${shop.clientId}/subjects/${nobody}`)).toMatchObject({ status: 404, body: { error: 'not_found' } });
  expect((await adminApi.call('GET', `/clients/no-such-client/subjects/${sub}`)).status).toBe(404);

  // The CLI reaches the server's database: Postgres only (always so under CI).
  if (!server.env.DATABASE_URL) return;
  const env = cleanEnvironment(server.env);
  // `--`: a pairwise sub is base64url, and one in 64 begins with "-", which would read as an option.
  const found = await runToEnd('src/cli.ts', ['users', 'find-subject', '--', shop.clientId as string, sub], env);
  expect({ code: found.code, stdout: found.stdout }).toEqual({ code: 0, stdout: `${user.email} (${user.userId})\n` });
  expect((await runToEnd('src/cli.ts', ['users', 'find-subject', '--', plain.clientId as string, user.userId], env)).stdout).toContain(user.email);
  const missing = await runToEnd('src/cli.ts', ['users', 'find-subject', '--', shop.clientId as string, nobody], env);
  expect({ code: missing.code, stderr: missing.stderr }).toEqual({ code: 1, stderr: `authz: no user is ${nobody} to ${shop.clientId}\n` });
});

test('redirect URIs on two hosts need a sector identifier URI listing them all; its host is the sector, fixed at registration', async () => {
  const user = await createUser(server);
  const uris = ['https://www.example.test/callback', 'https://m.example.test/callback'];
  await expect(registerApp(uris, {})).rejects.toThrow(/redirect URIs on more than one host need a sectorIdentifierUri/);

  served.set('/missing.json', [uris[0]]);
  await expect(registerApp(uris, { sectorIdentifierUri: `${documentsUrl}/missing.json` })).rejects.toThrow(/does not list https:\/\/m\.example\.test\/callback/);
  await expect(registerApp(uris, { sectorIdentifierUri: `${documentsUrl}/nowhere.json` })).rejects.toThrow(/answered 404/);
  served.set('/not-a-list.json', { redirect_uris: uris });
  await expect(registerApp(uris, { sectorIdentifierUri: `${documentsUrl}/not-a-list.json` })).rejects.toThrow(/must answer a JSON array of redirect URIs/);

  served.set('/sector.json', [...uris, 'https://app2.example.test/callback']);
  const web = await registerApp(uris, { sectorIdentifierUri: `${documentsUrl}/sector.json` });
  const mobile = await registerApp(['https://app2.example.test/callback'], { sectorIdentifierUri: `${documentsUrl}/sector.json` });
  const record = await server.services.clients.require(web.rp.clientMetadata().client_id);
  expect(record).toMatchObject({ subjectType: 'pairwise', sectorIdentifierUri: `${documentsUrl}/sector.json`, pairwiseSector: new URL(documentsUrl).host });
  const sub = (await signInTo(web, user)).claims()?.sub;
  expect((await signInTo(mobile, user)).claims()?.sub).toBe(sub);

  // New redirect URIs must be in the document; those that are keep the sub as it was.
  await expect(server.services.clients.update(record.clientId, { redirectUris: [...uris, 'https://elsewhere.example.test/cb'] })).rejects.toThrow(/does not list https:\/\/elsewhere/);
  await server.services.clients.update(record.clientId, { redirectUris: [uris[1] as string] });
  server.services.catalog.forgetClient(record.clientId);
  expect((await signInTo({ rp: web.rp, redirectUri: uris[1] as string }, user)).claims()?.sub).toBe(sub);
});

test('a single-host pairwise app keeps its sector when its redirect URIs move to another host', async () => {
  const user = await createUser(server);
  const app = await registerApp(['https://old.example.test/callback'], {});
  const sub = (await signInTo(app, user)).claims()?.sub;
  await server.services.clients.update(app.rp.clientMetadata().client_id, { redirectUris: ['https://new.example.test/callback'] });
  server.services.catalog.forgetClient(app.rp.clientMetadata().client_id);
  expect((await signInTo({ rp: app.rp, redirectUri: 'https://new.example.test/callback' }, user)).claims()?.sub).toBe(sub);
});

test('pairwise is refused where it means nothing, and a sector URI without it; discovery offers both subject types', async () => {
  await expect(server.services.clients.create({ type: 'service', name: 'Job', subjectType: 'pairwise' })).rejects.toThrow(/a service client signs no users in/);
  await expect(server.services.clients.create({ type: 'device', name: 'TV', subjectType: 'pairwise' })).rejects.toThrow(/pairwise subjects are for web and spa clients/);
  await expect(
    server.services.clients.create({ type: 'web', name: 'App', redirectUris: ['https://x.example.test/cb'], sectorIdentifierUri: `${documentsUrl}/sector.json` }),
  ).rejects.toThrow(/give subjectType pairwise too/);
  const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { subject_types_supported: string[] };
  expect(discovery.subject_types_supported).toEqual(['public', 'pairwise']);
});
