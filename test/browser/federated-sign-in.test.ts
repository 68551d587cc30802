/**
 * Signing in with another identity provider in a real browser: headless Chromium presses "Continue with Corp
 * SSO" on our login page, signs in at the provider (a second server of ours, on another site: 127.0.0.1 against
 * localhost), and comes back through our callback to the app, which redeems the code with openid-client. What a
 * stand-in browser cannot show is checked here: the cookies Chromium sends on the way back from another site
 * (SameSite), the pages' CSP, and that the buttons are there to press.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { PASSWORD, REDIRECT_URI, codeFlowRequest, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let upstream: TestServer;
let server: TestServer;
let browser: Browser;
let rp: oidc.Configuration;

beforeAll(async () => {
  upstream = await startTestServer();
  const { clientId, secret } = await createWebClient(upstream, { firstParty: true });
  const file = path.join(tmpdir(), `identity-providers-browser-${process.pid}-${Date.now()}.json`);
  await writeFile(file, JSON.stringify([{ id: 'corp', name: 'Corp SSO', issuer: upstream.issuer, clientId, clientSecret: secret }]));
  server = await startTestServer({ host: 'localhost', env: { IDENTITY_PROVIDERS_FILE: file } });
  await upstream.services.clients.update(clientId, { redirectUris: [`${server.issuer}/federation/corp/callback`] });
  const app = await createWebClient(server, { firstParty: true });
  rp = await discover(server, app.clientId, app.secret);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await upstream?.close();
});

/** What the page's console says the Content Security Policy refused, as it comes. */
function cspErrorsOf(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /content security policy|refused to/i.test(message.text())) errors.push(message.text());
  });
  return errors;
}

test('Continue with Corp SSO: signed in there, back here with a new account, and the app gets its ID token', async () => {
  const person = await createUser(upstream);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const cspErrors = cspErrorsOf(page);
    const request = await codeFlowRequest(rp, { scope: 'openid email profile' });
    await page.goto(request.url.href);
    await page.getByRole('button', { name: 'Continue with Corp SSO' }).click();
    // The provider's own login page, on its own site.
    await page.waitForURL((url) => url.origin === upstream.issuer);
    await page.getByLabel('Email').fill(person.email);
    await page.getByLabel('Password').fill(PASSWORD);
    const [arrival] = await Promise.all([
      page.waitForRequest((each) => each.url().startsWith(REDIRECT_URI)),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(arrival.url()), {
      pkceCodeVerifier: request.codeVerifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
    });
    const claims = tokens.claims();
    expect(claims?.email).toBe(person.email);
    expect(claims?.amr).toEqual(['fed']);
    expect((await server.services.users.findByEmail(person.email))?.id).toBe(claims?.sub);
    expect(cspErrors).toEqual([]);
  } finally {
    await context.close();
  }
});

test('an account the provider made sets its first password on the account page, and then signs in with it', async () => {
  const person = await createUser(upstream);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const cspErrors = cspErrorsOf(page);
    await page.goto(`${server.issuer}/account`);
    await page.getByRole('button', { name: 'Continue with Corp SSO' }).click();
    await page.waitForURL((url) => url.origin === upstream.issuer);
    await page.getByLabel('Email').fill(person.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.origin === server.issuer && url.pathname === '/account');
    // Just signed in: the form asks only for the new password, twice.
    await page.getByText('Your account has no password.').first().waitFor();
    await page.getByLabel('New password', { exact: true }).fill('a long new passphrase');
    await page.getByLabel('New password again').fill('a long new passphrase');
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByText('Your password was set').waitFor();

    // Another browser: the password signs in to the account page.
    const other = await browser.newContext();
    try {
      const second = await other.newPage();
      await second.goto(`${server.issuer}/account`);
      await second.getByLabel('Email').fill(person.email);
      await second.getByLabel('Password').fill('a long new passphrase');
      await second.getByRole('button', { name: 'Sign in', exact: true }).click();
      await second.getByRole('heading', { name: 'Password' }).waitFor();
      expect(await second.getByRole('button', { name: 'Change password' }).count()).toBe(1);
    } finally {
      await other.close();
    }
    expect(cspErrors).toEqual([]);
  } finally {
    await context.close();
  }
});
