/**
 * examples/spa end to end: headless Chromium runs the static single-page app (oidc-client-ts), signs in through
 * our real login and consent pages as a public client with PKCE, shows the ID token's claims, calls the example
 * API cross-origin, renews with a rotating refresh token, and signs out of the authorization server.
 *
 * The example API has no CORS of its own (it is meant to sit behind the app's origin or a gateway); the SPA
 * example's tiny wrapper (examples/spa/cors.ts) allows the SPA's origin, as a gateway would.
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { createResourceServer } from '../../examples/resource-server/src/app.js';
import { withCors } from '../../examples/spa/cors.js';
import { createSpaHandler } from '../../examples/spa/server.js';
import { API, PASSWORD } from '../support/relying-party.js';
import { closeHttp as close, listenHttp as listen } from '../support/process.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let api: Server;
let spa: Server;
let spaUrl: string;
let clientId: string;
let email: string;
const NAME = '<img src=x onerror=alert(1)> Ada';
const consoleErrors: string[] = [];

/** The user oidc-client-ts keeps in sessionStorage (a string expression: tsconfig has no DOM lib). */
const storedUser = async () => {
  const json = await page.evaluate<string | null>(`sessionStorage.getItem(${JSON.stringify(`oidc.user:${server.issuer}:${clientId}`)})`);
  return json ? (JSON.parse(json) as { access_token: string; refresh_token?: string; expires_at: number }) : null;
};
const patchStoredUser = (changes: Record<string, unknown>) =>
  page.evaluate(`(() => {
    const key = ${JSON.stringify(`oidc.user:${server.issuer}:${clientId}`)};
    sessionStorage.setItem(key, JSON.stringify({ ...JSON.parse(sessionStorage.getItem(key)), ...${JSON.stringify(changes)} }));
  })()`);

async function callApi() {
  await page.evaluate('document.getElementById("output").textContent = ""');
  await page.getByRole('button', { name: 'Call API' }).click();
  await page.locator('#output:not(:empty)').waitFor();
  return page.locator('#output').textContent();
}

beforeAll(async () => {
  server = await startTestServer();
  await server.services.apis.create({ indicator: API, name: 'Messages', scopes: ['messages:read', 'messages:write'], isDefault: true });
  email = `spa.${Date.now()}@example.test`;
  await server.services.users.create({ email, password: PASSWORD, name: NAME, roles: ['reader'], emailVerified: true });

  const spaServer = await listen();
  spa = spaServer.http;
  spaUrl = spaServer.url;
  const resourceServer = await createResourceServer({ issuer: server.issuer, audience: API });
  const apiServer = await listen(withCors(spaUrl, resourceServer.callback()));
  api = apiServer.http;

  const { client } = await server.services.clients.create({
    type: 'spa',
    name: 'Example SPA',
    redirectUris: [`${spaUrl}/callback.html`],
    postLogoutRedirectUris: [`${spaUrl}/`],
    firstParty: false,
  });
  clientId = client.clientId;
  spa.on('request', createSpaHandler({ issuer: server.issuer, clientId, apiUrl: `${apiServer.url}/messages`, apiResource: API }));

  browser = await launchChromium();
  context = await browser.newContext();
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  page.on('response', (response) => {
    if (response.status() === 404) consoleErrors.push(`404 ${response.url()}`);
  });
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await close(spa);
  await close(api);
  await server?.close();
});

describe('examples/spa', () => {
  test('signs in with code + PKCE through the login and consent pages', async () => {
    await page.goto(spaUrl);
    await expect(page.locator('#status').textContent()).resolves.toBe('Signed out');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.fill('#email', email);
    await page.fill('#password', PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${spaUrl}/`);
    await page.getByText('Signed in as').waitFor();
    await expect(page.locator('#status').textContent()).resolves.toBe(`Signed in as ${NAME}`);
    const user = await storedUser();
    expect(user?.refresh_token).toEqual(expect.any(String));
  });

  test('Show profile renders the claims as text', async () => {
    await page.getByRole('button', { name: 'Show profile' }).click();
    await page.locator('#claims dd').first().waitFor();
    const claims = await page.locator('#claims').textContent();
    expect(claims).toContain(email);
    expect(claims).toContain(NAME);
    expect(claims).toContain('reader');
    await expect(page.locator('#claims img').count()).resolves.toBe(0);

    const artifacts = path.join(process.cwd(), 'test', 'artifacts');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'spa-profile.png'), fullPage: true });
  });

  test('Call API sends the access token cross-origin and the API accepts it', async () => {
    const output = await callApi();
    expect(output).toMatch(/^200 /);
    expect(output).toContain('"text": "hello"');
  });

  test('a refused or expired access token is renewed with the refresh token, which rotates', async () => {
    const first = (await storedUser())!.refresh_token;
    await patchStoredUser({ access_token: 'not-a-token' });
    expect(await callApi()).toMatch(/^200 /);
    const second = (await storedUser())!;
    expect(second.refresh_token).toEqual(expect.any(String));
    expect(second.refresh_token).not.toBe(first);
    expect(second.access_token).not.toBe('not-a-token');

    await patchStoredUser({ expires_at: Math.floor(Date.now() / 1000) - 60 });
    expect(await callApi()).toMatch(/^200 /);
    const third = (await storedUser())!;
    expect(third.refresh_token).not.toBe(second.refresh_token);
    expect(third.access_token).not.toBe(second.access_token);
  });

  test('Sign out ends the session at the authorization server: the next sign-in asks for the password', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign out of all apps' }).click();
    await page.waitForURL(`${spaUrl}/`);
    await page.getByText('Signed out').waitFor();
    await expect(storedUser()).resolves.toBeNull();

    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#password').waitFor();
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
  });

  test('nothing broke the page: no script errors, no CSP violations', () => {
    // "Failed to load resource" lines are the API's expected 401 and the favicons nobody serves.
    expect(consoleErrors.filter((text) => !text.startsWith('Failed to load resource'))).toEqual([]);
  });
});
