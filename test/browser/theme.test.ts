/**
 * A theme (THEME_DIR) as a person sees it in Chromium: the logo shows and the theme's stylesheet applies under the
 * pages' CSP (both come from /assets/, which it allows), with no error in the console, and signing in goes on.
 */
import { rm } from 'node:fs/promises';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { writeExampleTheme } from '../support/example-theme.js';
import { type Fixtures, PASSWORD, REDIRECT_URI, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let theme: string;
let server: TestServer;
let browser: Browser;
let user: Fixtures;

beforeAll(async () => {
  theme = await writeExampleTheme();
  server = await startTestServer({ env: { THEME_DIR: theme } });
  user = await createUser(server);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await rm(theme, { recursive: true, force: true });
});

test('the login page shows the theme’s logo and stylesheet with no console error, and signs in', async () => {
  const { clientId, secret } = await createWebClient(server, { firstParty: true });
  const config = await discover(server, clientId, secret);
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    await page.goto(url.href);
    const logo = page.getByRole('img', { name: 'Example Corp' });
    await logo.waitFor();
    // Decoded, at the size the theme's stylesheet gives it (the file is 2×1 pixels).
    // Strings, evaluated in the page: tsconfig has no DOM lib.
    const image = "document.querySelector('header.brand img')";
    await expect(page.evaluate<number>(`${image}.complete && ${image}.naturalWidth`)).resolves.toBe(2);
    await expect(page.evaluate<string>(`getComputedStyle(${image}).width`)).resolves.toBe('64px');
    await expect(page.evaluate<string>("getComputedStyle(document.querySelector('header.brand')).textAlign")).resolves.toBe('center');

    await page.fill('#email', user.email);
    await page.fill('#password', PASSWORD);
    const [callback] = await Promise.all([
      page.waitForRequest((request) => request.url().startsWith(REDIRECT_URI)),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    expect(new URL(callback.url()).searchParams.get('code')).toEqual(expect.any(String));
    expect(errors).toEqual([]);
  } finally {
    await context.close();
  }
});
