/**
 * Creating an account with a passkey in a real browser: headless Chromium with its virtual authenticator runs the
 * registration page's script (views/assets/passkeys.js): "Create account with a passkey instead" takes the name,
 * email and terms box of the form above it, the authenticator makes the passkey, and the app gets its code for
 * the new account, which has no password. The issuer is http://localhost (WebAuthn accepts no IP address).
 */
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { addVirtualAuthenticator, cspErrorsOf, launchChromium } from '../support/chromium.js';
import { REDIRECT_URI, codeFlowRequest, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer({ host: 'localhost', env: { REGISTRATION: 'open', TERMS_URL: 'https://example.test/terms', TERMS_VERSION: '3' } });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

test('"Create account with a passkey instead": the terms box is asked for, then the passkey makes the account and signs in', async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const cspErrors = cspErrorsOf(page);
    const { cdp, authenticatorId } = await addVirtualAuthenticator(context, page);

    const { clientId, secret } = await createWebClient(server, { firstParty: true });
    const config = await discover(server, clientId, secret);
    const request = await codeFlowRequest(config, { scope: 'openid email' });
    await page.goto(request.url.href);
    await page.getByRole('link', { name: 'Create one' }).click();
    const email = `chromium.${Date.now()}@example.test`;
    await page.fill('#name', 'Chromium Person');
    await page.fill('#email', email);
    await page.getByRole('button', { name: 'Create account with a passkey instead' }).click();
    await page.getByText('Accept the terms of service to create an account.').waitFor();
    const { credentials: none } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(none).toEqual([]);

    await page.check('#terms');
    const [callback] = await Promise.all([
      page.waitForRequest((sent) => new URL(sent.url()).origin === new URL(REDIRECT_URI).origin),
      page.getByRole('button', { name: 'Create account with a passkey instead' }).click(),
    ]);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback.url()), {
      pkceCodeVerifier: request.codeVerifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
    });
    const sub = tokens.claims()?.sub as string;
    expect(tokens.claims()).toMatchObject({ email, amr: expect.arrayContaining(['user', 'mfa']) });
    expect(await server.services.users.findById(sub)).toMatchObject({ name: 'Chromium Person', passwordChangedAt: null, termsAccepted: { version: '3' } });
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toEqual([expect.objectContaining({ isResidentCredential: true, userHandle: Buffer.from(sub).toString('base64') })]);
    expect(cspErrors).toEqual([]);
  } finally {
    await context.close();
  }
});
