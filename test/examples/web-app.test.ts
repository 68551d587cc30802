/**
 * examples/web-app end to end: headless Chromium signs in through our real login and consent pages, the app
 * shows the person's claims, calls the example API with a token the browser never sees, refreshes it silently,
 * and signing out ends the session at the authorization server too.
 */
import type { Server } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { createResourceServer } from '../../examples/resource-server/src/app.js';
import { type Session, createWebApp } from '../../examples/web-app/src/app.js';
import { API, PASSWORD } from '../support/relying-party.js';
import { closeHttp as close, listenHttp as listen } from '../support/process.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let api: Server;
let web: Server;
let baseUrl: string;
let email: string;
const sessions = new Map<string, Session>();
const NAME = '<b>Ada</b> & "Bob"';

/** The one signed-in session of the app (its tokens live on the server, never in the browser). */
const signedInSession = () => {
  const signedIn = [...sessions.values()].filter((session) => session.tokens);
  expect(signedIn).toHaveLength(1);
  return signedIn[0]!;
};

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read', 'messages:write'], isDefault: true });
  email = `web.${Date.now()}@example.test`;
  await server.services.users.create({ email, password: PASSWORD, name: NAME, roles: ['reader'], emailVerified: true });

  const resourceServer = await createResourceServer({ issuer: server.issuer, audience: API });
  const apiServer = await listen(resourceServer.callback());
  api = apiServer.http;

  // Bind first, so that the client can be registered with the app's real redirect URI.
  const webServer = await listen();
  web = webServer.http;
  baseUrl = webServer.url;
  const { client, secret } = await server.services.clients.create({
    type: 'web',
    name: 'Example Web App',
    redirectUris: [`${baseUrl}/callback`],
    postLogoutRedirectUris: [`${baseUrl}/`],
    firstParty: false,
  });
  const app = await createWebApp({
    issuer: server.issuer,
    clientId: client.clientId,
    clientSecret: secret!,
    baseUrl,
    apiUrl: `${apiServer.url}/messages`,
    apiResource: API,
    sessions,
  });
  web.on('request', app.callback());

  browser = await launchChromium();
  context = await browser.newContext();
  page = await context.newPage();
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await close(web);
  await close(api);
  await server?.close();
});

async function apiAnswer() {
  const response = await page.goto(`${baseUrl}/api`);
  return { status: response!.status(), json: JSON.parse((await page.locator('body').textContent()) ?? '') };
}

describe('examples/web-app', () => {
  test('signs in through the login and consent pages and shows the claims, escaped', async () => {
    await page.goto(baseUrl);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.fill('#email', email);
    await page.fill('#password', PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${baseUrl}/`);

    await expect(page.locator('#greeting').textContent()).resolves.toBe(`Signed in as ${NAME}`);
    const claims = await page.locator('#claims').textContent();
    expect(claims).toContain(email);
    expect(claims).toContain('reader');
    await expect(page.locator('#claims b').count()).resolves.toBe(0); // the name was text, not markup
  });

  test('the browser holds only an httpOnly, SameSite=Lax session cookie, and never a token', async () => {
    // Cookies ignore ports: the authorization server's own cookies (_session) on 127.0.0.1 are listed too.
    const cookies = (await context.cookies(baseUrl)).filter((cookie) => !cookie.name.startsWith('_session'));
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: 'sid', httpOnly: true, sameSite: 'Lax' });
    const { tokens } = signedInSession();
    const html = await page.content();
    for (const token of [tokens!.accessToken, tokens!.refreshToken!, tokens!.idToken]) expect(html).not.toContain(token);
    expect(await page.evaluate<string>('document.cookie')).toBe('');
  });

  test('calls the API with the access token', async () => {
    const answer = await apiAnswer();
    expect(answer.status).toBe(200);
    expect(answer.json.body).toMatchObject({ messages: [{ id: 1, text: 'hello' }], caller: signedInSession().tokens!.claims.sub });
  });

  test('refreshes silently when the API refuses the access token, and when it has expired', async () => {
    const session = signedInSession();
    const first = session.tokens!.refreshToken;
    session.tokens!.accessToken = 'not-a-token';
    expect((await apiAnswer()).status).toBe(200);
    const second = session.tokens!.refreshToken;
    expect(second).not.toBe(first); // rotated
    expect(session.tokens!.accessToken).not.toBe('not-a-token');

    const accessToken = session.tokens!.accessToken;
    session.tokens!.expiresAt = Date.now() - 1000;
    expect((await apiAnswer()).status).toBe(200);
    expect(session.tokens!.refreshToken).not.toBe(second);
    expect(session.tokens!.accessToken).not.toBe(accessToken);
  });

  test('a callback this browser did not start is refused', async () => {
    const response = await fetch(`${baseUrl}/callback?code=x&state=y`);
    expect(response.status).toBe(400);
  });

  test('signing out ends the session at the authorization server: the next sign-in asks for the password', async () => {
    await page.goto(baseUrl);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign out of all apps' }).click();
    await page.waitForURL(`${baseUrl}/`);
    await expect(page.getByRole('link', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
    expect([...sessions.values()].filter((session) => session.tokens)).toHaveLength(0);
    expect((await apiAnswer()).status).toBe(401);

    await page.goto(baseUrl);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.locator('#password').waitFor();
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
  });
});
