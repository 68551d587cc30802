/**
 * Our login and consent pages in a real browser: headless Chromium signs in, consents or denies, and the
 * relying party redeems what comes back. The redirect_uri host does not exist. The browser reaches it through
 * a 303 from the issuer, and Playwright's page.route() never sees the target of a redirect (it only runs for the
 * first URL of a chain), so the callback cannot be answered. The test reads the request the browser makes to it
 * instead: that URL is what the application would have received. The navigation then fails to resolve, which
 * the test ignores.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { type MailCatcher, linkIn, startMailCatcher } from '../support/mail-catcher.js';
import { type Fixtures, PASSWORD, REDIRECT_URI, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

const WRONG_CREDENTIALS = 'That email and password do not match an account.';
const APP_ORIGIN = new URL(REDIRECT_URI).origin;

let server: TestServer;
let mail: MailCatcher;
let browser: Browser;
let user: Fixtures;
let context: BrowserContext | undefined;

beforeAll(async () => {
  mail = await startMailCatcher();
  server = await startTestServer({ env: { SMTP_URL: mail.url, REGISTRATION: 'open' } });
  user = await createUser(server);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await mail?.close();
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

/** A fresh browser profile (no session, no remembered consent). */
async function openPage(options: { viewport?: { width: number; height: number }; colorScheme?: 'light' | 'dark' } = {}): Promise<Page> {
  context = await browser.newContext(options);
  return context.newPage();
}

/**
 * Records what the page logs as an error: all of it, or what `about` matches. (No 404 of /favicon.ico among them:
 * the layout says the site has no icon, so Chromium does not ask for one.)
 */
function consoleErrorsOf(page: Page, about = /./): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && about.test(message.text())) errors.push(message.text());
  });
  return errors;
}

/** Records what the page logs as an error about the CSP. */
const cspErrorsOf = (page: Page) => consoleErrorsOf(page, /content security policy|refused to/i);

/** Clicks a button that ends the flow and returns the redirect_uri URL the browser was sent to. */
async function clickThroughToApp(page: Page, button: string): Promise<URL> {
  const [request] = await Promise.all([
    page.waitForRequest((request) => new URL(request.url()).origin === APP_ORIGIN),
    page.getByRole('button', { name: button }).click(),
  ]);
  return new URL(request.url());
}

/** A third-party web client's authorization request, with what it needs to redeem the code later. */
async function startFlow(extra: Record<string, string> = {}) {
  const { clientId, secret } = await createWebClient(server);
  const config = await discover(server, clientId, secret);
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...extra,
  });
  return { config, clientId, url, codeVerifier, state, nonce };
}

async function signIn(page: Page, email: string, password: string) {
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('login and consent pages in a browser', () => {
  test('a person signs in, allows a third-party client, and the client redeems the code for an ID token of that person', async () => {
    const page = await openPage();
    const flow = await startFlow();
    await page.goto(flow.url.href);
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);

    await signIn(page, user.email, PASSWORD);
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Allow Web App?');
    await expect(page.title()).resolves.toBe('Allow Web App?');
    // Where the access can be taken back later.
    await expect(page.getByRole('link', { name: 'your account page' }).getAttribute('href')).resolves.toBe('/account#apps');

    const callback = await clickThroughToApp(page, 'Allow');
    expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT_URI);
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
    expect(callback.searchParams.get('state')).toBe(flow.state);

    const tokens = await oidc.authorizationCodeGrant(flow.config, callback, {
      pkceCodeVerifier: flow.codeVerifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    });
    expect(tokens.id_token).toEqual(expect.any(String));
    expect(tokens.claims()).toMatchObject({ sub: user.userId, aud: flow.clientId, iss: server.issuer, nonce: flow.nonce });
  });

  test('a wrong password and an unknown email get the same message on the login page, which keeps the typed email', async () => {
    const page = await openPage();
    const flow = await startFlow();
    await page.goto(flow.url.href);

    const attempt = async (email: string, password: string) => {
      const [response] = await Promise.all([
        page.waitForResponse((response) => response.request().method() === 'POST' && /\/interaction\/[^/]+\/login$/.test(response.url())),
        signIn(page, email, password),
      ]);
      await page.waitForLoadState();
      return {
        status: response.status(),
        message: await page.getByRole('alert').textContent(),
        email: await page.inputValue('#email'),
        password: await page.inputValue('#password'),
      };
    };

    const wrongPassword = await attempt(user.email, 'not the password');
    expect(wrongPassword).toEqual({ status: 400, message: WRONG_CREDENTIALS, email: user.email, password: '' });

    const unknownEmail = `nobody.${Date.now()}@example.test`;
    const unknown = await attempt(unknownEmail, PASSWORD);
    expect(unknown).toEqual({ status: 400, message: WRONG_CREDENTIALS, email: unknownEmail, password: '' });
    await expect(page.getByRole('button', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
  });

  test('the login error is tied to the fields it is about, and the title says there is an error', async () => {
    const page = await openPage();
    await page.goto((await startFlow()).url.href);
    await expect(page.title()).resolves.not.toMatch(/^Error/);
    await expect(page.locator('#email').getAttribute('aria-invalid')).resolves.toBeNull();

    await signIn(page, user.email, 'not the password');
    await page.getByRole('alert').waitFor();
    await expect(page.title()).resolves.toMatch(/^Error: Sign in to /);
    const errorId = await page.getByRole('alert').getAttribute('id');
    expect(errorId).toBeTruthy();
    for (const field of ['#email', '#password']) {
      await expect(page.locator(field).getAttribute('aria-invalid')).resolves.toBe('true');
      await expect(page.locator(field).getAttribute('aria-describedby')).resolves.toBe(errorId);
    }
    // What a screen reader announces with the field: its description is the message.
    await expect(page.locator(`#${errorId}`).textContent()).resolves.toBe(WRONG_CREDENTIALS);
  });

  test('an over-long email or password gets a sentence for a person, and the form keeps the email and the ticked box', async () => {
    const page = await openPage();
    await page.goto((await startFlow()).url.href);
    const box = page.getByRole('checkbox', { name: 'Keep me signed in' });

    await page.getByText('Keep me signed in').click();
    await signIn(page, user.email, 'p'.repeat(1100));
    await page.getByRole('alert').waitFor();
    await expect(page.getByRole('alert').textContent()).resolves.toBe(WRONG_CREDENTIALS);
    await expect(page.inputValue('#email')).resolves.toBe(user.email);
    await expect(box.isChecked()).resolves.toBe(true);

    const longEmail = `${'a'.repeat(300)}@example.test`;
    await signIn(page, longEmail, PASSWORD);
    await page.waitForLoadState();
    await expect(page.getByRole('alert').textContent()).resolves.toBe('That email address is too long.');
    await expect(page.inputValue('#email')).resolves.toBe(longEmail);
    await expect(box.isChecked()).resolves.toBe(true);
  });

  test('"Keep me signed in" is unticked until the user ticks it, and decides whether the browser keeps the session', async () => {
    const page = await openPage();
    const sessionCookie = async () => (await page.context().cookies()).find((cookie) => cookie.name === '_session');

    await page.goto((await startFlow()).url.href);
    const box = page.getByRole('checkbox', { name: 'Keep me signed in' });
    await expect(box.isChecked()).resolves.toBe(false);
    await signIn(page, user.email, PASSWORD);
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    expect(await sessionCookie()).toMatchObject({ expires: -1, httpOnly: true }); // ends with the browser

    await page.context().clearCookies();
    await page.goto((await startFlow()).url.href);
    await page.getByText('Keep me signed in').click(); // the label ticks it
    await expect(box.isChecked()).resolves.toBe(true);
    await signIn(page, user.email, PASSWORD);
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    const kept = await sessionCookie();
    const sessionTtl = server.config.ttl.session;
    expect(kept?.expires).toBeGreaterThan(Date.now() / 1000 + sessionTtl - 60);
    expect(kept?.expires).toBeLessThan(Date.now() / 1000 + sessionTtl + 60);
  });

  /** Signs in with `responseMode` and consents: what the browser then posts to the app by itself, and any CSP error. */
  async function formPostOf(responseMode: string) {
    const page = await openPage();
    const cspErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' && /content security policy/i.test(message.text())) cspErrors.push(message.text());
    });
    const flow = await startFlow({ response_mode: responseMode });
    await page.goto(flow.url.href);
    await signIn(page, user.email, PASSWORD);
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    const [post] = await Promise.all([
      page.waitForRequest((request) => new URL(request.url()).origin === APP_ORIGIN),
      page.getByRole('button', { name: 'Allow' }).click(),
    ]);
    expect(post.method()).toBe('POST');
    expect(post.url()).toBe(REDIRECT_URI);
    return { flow, posted: new URLSearchParams(post.postData() ?? ''), cspErrors };
  }

  test('response_mode=form_post: the browser posts the code to the client by itself, its script allowed by the CSP', async () => {
    const { flow, posted, cspErrors } = await formPostOf('form_post');
    expect(posted.get('code')).toEqual(expect.any(String));
    expect(posted.get('state')).toBe(flow.state);
    expect(cspErrors).toEqual([]);
  });

  test('response_mode=form_post.jwt (JARM): the browser posts the signed response, which the app redeems', async () => {
    const { flow, posted, cspErrors } = await formPostOf('form_post.jwt');
    expect([...posted.keys()]).toEqual(['response']);
    expect(cspErrors).toEqual([]);
    oidc.useJwtResponseMode(flow.config);
    const callback = new Request(REDIRECT_URI, { method: 'POST', body: posted });
    const tokens = await oidc.authorizationCodeGrant(flow.config, callback, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
    expect(tokens.claims()?.sub).toBe(user.userId);
  });

  test('asked to sign in again, a second person signs in instead: the browser leaves the first one’s session by itself', async () => {
    // People of their own, so that no other test's sessions are counted.
    const first = await createUser(server);
    const page = await openPage();
    await page.goto((await startFlow()).url.href);
    await signIn(page, first.email, PASSWORD);
    await clickThroughToApp(page, 'Allow');

    // A new tab of the same browser (the first one is still failing to load the app, whose host does not exist).
    const tab = await page.context().newPage();
    const other = await createUser(server);
    const flow = await startFlow({ prompt: 'login' });
    await tab.goto(flow.url.href);
    await expect(tab.inputValue('#email')).resolves.toBe(first.email);
    await signIn(tab, other.email, PASSWORD);
    // oidc-provider's self-submitting logout form ran (no page asked anything), and the consent is the new person's.
    await tab.getByRole('button', { name: 'Allow' }).waitFor();
    const callback = await clickThroughToApp(tab, 'Allow');
    const tokens = await oidc.authorizationCodeGrant(flow.config, callback, {
      pkceCodeVerifier: flow.codeVerifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    });
    expect(tokens.claims()?.sub).toBe(other.userId);
    expect(await server.services.sessions.list(first.userId)).toEqual([]);
  });

  test('Deny on the consent page sends the browser back to the redirect_uri with error=access_denied', async () => {
    const page = await openPage();
    const flow = await startFlow();
    await page.goto(flow.url.href);
    await signIn(page, user.email, PASSWORD);
    await page.getByRole('button', { name: 'Deny' }).waitFor();

    const callback = await clickThroughToApp(page, 'Deny');
    expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT_URI);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(flow.state);
    expect(callback.searchParams.has('code')).toBe(false);
  });

  test('a login page left open until its sign-in expired: signing in then offers to start again, and the app gets its code and state', async () => {
    const page = await openPage();
    const flow = await startFlow();
    await page.goto(flow.url.href);
    const uid = new URL(page.url()).pathname.split('/')[2] ?? '';
    await (await server.server.provider.Interaction.find(uid))?.destroy();

    await signIn(page, user.email, PASSWORD);
    await page.getByText('This sign-in to Web App expired before it was finished.').waitFor();
    await page.getByRole('link', { name: 'Start signing in to Web App again' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await signIn(page, user.email, PASSWORD);
    const callback = await clickThroughToApp(page, 'Allow');
    expect(callback.searchParams.get('state')).toBe(flow.state);
    const tokens = await oidc.authorizationCodeGrant(flow.config, callback, {
      pkceCodeVerifier: flow.codeVerifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: user.userId, nonce: flow.nonce });
  });

  test('the pages load nothing from elsewhere, break no CSP rule, and the login page is sent with a CSP and no-store', async () => {
    const page = await openPage();
    const consoleErrors: string[] = [];
    const requested: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('request', (request) => requested.push(request.url()));

    const flow = await startFlow();
    const [loginResponse] = await Promise.all([
      page.waitForResponse((response) => /\/interaction\/[^/]+$/.test(new URL(response.url()).pathname) && response.request().method() === 'GET'),
      page.goto(flow.url.href),
    ]);
    expect(loginResponse.status()).toBe(200);
    const headers = loginResponse.headers();
    expect(headers['content-security-policy']).toContain("default-src 'self'");
    expect(headers['cache-control']).toContain('no-store');

    await signIn(page, user.email, PASSWORD);
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    const callback = await clickThroughToApp(page, 'Allow');
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));

    const issuerOrigin = new URL(server.issuer).origin;
    const elsewhere = requested.filter((url) => ![issuerOrigin, APP_ORIGIN].includes(new URL(url).origin));
    expect(elsewhere).toEqual([]);
    expect(requested.some((url) => url.startsWith(`${issuerOrigin}/assets/`))).toBe(true); // the stylesheet did load
    expect(consoleErrors.filter((text) => /content security policy|refused to/i.test(text))).toEqual([]);
  });

  test('on a 375x667 phone the login page does not scroll sideways and its Sign in button is visible', async () => {
    const viewport = { width: 375, height: 667 };
    const page = await openPage({ viewport });
    const flow = await startFlow();
    await page.goto(flow.url.href);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();

    const scrollWidth = await page.evaluate<number>('document.documentElement.scrollWidth'); // a string: tsconfig has no DOM lib
    expect(scrollWidth).toBeLessThanOrEqual(viewport.width);
    await expect(page.getByRole('button', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
    const email = await page.locator('#email').boundingBox();
    expect(email).not.toBeNull();
    expect(email!.x + email!.width).toBeLessThanOrEqual(viewport.width);

    const artifacts = path.join(process.cwd(), 'test', 'artifacts');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'login.png'), fullPage: true });
  });
});

describe('the device flow’s pages in a browser (RFC 8628)', () => {
  /** A TV's request for a code, as a device client makes it. */
  async function startDevice() {
    const { client } = await server.services.clients.create({ type: 'device', name: 'Living-room TV' });
    const config = await discover(server, client.clientId, undefined, oidc.None());
    const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile' });
    // Polled without the 5 s a real device waits between polls.
    const tokens = () => oidc.pollDeviceAuthorizationGrant(config, { ...started, interval: 0.05 }, undefined, { signal: AbortSignal.timeout(15_000) });
    return { started, tokens };
  }

  test('a person types the code from the TV, checks the app and code, signs in and consents; the TV gets its tokens', async () => {
    const { started, tokens } = await startDevice();
    const page = await openPage({ viewport: { width: 375, height: 667 } });
    const cspErrors = cspErrorsOf(page);
    await page.goto(started.verification_uri);
    await page.getByLabel('Code').fill(started.user_code.replace('-', '').toLowerCase());
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText(started.user_code, { exact: true }).waitFor();
    await expect(page.locator('h1').textContent()).resolves.toBe('Connect Living-room TV?');
    await page.getByRole('button', { name: 'Continue' }).click();
    await signIn(page, user.email, PASSWORD);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.getByRole('heading', { name: 'Device connected' }).waitFor();
    expect((await tokens()).claims()?.sub).toBe(user.userId);
    expect(cspErrors).toEqual([]);

    const artifacts = path.join(process.cwd(), 'test', 'artifacts');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'device-connected.png'), fullPage: true });
  });

  test('the link with the code in it reaches the confirmation through a self-submitting form our CSP allows', async () => {
    const { started } = await startDevice();
    const page = await openPage();
    const cspErrors = cspErrorsOf(page);
    await page.goto(started.verification_uri_complete as string);
    await page.getByText(started.user_code, { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByText('The sign-in was cancelled').waitFor();
    expect(cspErrors).toEqual([]);
  });

  test('a wrong code is answered on the same page, keeping what was typed to correct', async () => {
    const page = await openPage();
    await page.goto(`${server.issuer}/device`);
    await page.getByLabel('Code').fill('BBBB-BBBB');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText('That code is not right').waitFor();
    await expect(page.getByLabel('Code').inputValue()).resolves.toBe('BBBB-BBBB');
    await expect(page.title()).resolves.toBe('Error: Connect a device');
    const errorId = await page.getByRole('alert').getAttribute('id');
    expect(errorId).toBeTruthy();
    await expect(page.getByLabel('Code').getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.getByLabel('Code').getAttribute('aria-describedby')).resolves.toBe(errorId);
  });
});

describe('two-step verification’s pages in a browser', () => {
  const PHONE = { width: 375, height: 667 };

  /** The authenticator app: codes from the key, for now or a number of 30-second steps on. */
  const appFor = (key: string) => (stepsAhead = 0) =>
    new TOTP({ secret: Secret.fromBase32(key), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: Date.now() + stepsAhead * 30_000 });

  /** A code the app makes at no step the server would accept now. */
  const wrongCodeFor = (app: ReturnType<typeof appFor>) => ['000000', '111111', '222222'].find((code) => ![-1, 0, 1, 2].map(app).includes(code)) as string;

  async function idTokenClaims(flow: Awaited<ReturnType<typeof startFlow>>, callback: URL) {
    const tokens = await oidc.authorizationCodeGrant(flow.config, callback, {
      pkceCodeVerifier: flow.codeVerifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    });
    return tokens.claims();
  }

  test.each(['light', 'dark'] as const)(
    'on a phone (%s scheme), a person asked to set it up sees the QR code and key, confirms with the app’s code, gets ten recovery codes, and the app gets amr pwd otp mfa',
    async (colorScheme) => {
      const user = await createUser(server);
      await server.services.users.update(user.email, { totpRequired: true });
      const page = await openPage({ viewport: PHONE, colorScheme });
      const consoleErrors = consoleErrorsOf(page);
      const flow = await startFlow();
      await page.goto(flow.url.href);
      await signIn(page, user.email, PASSWORD);
      await page.getByRole('heading', { name: 'Set up two-step verification' }).waitFor();

      // Big enough for a phone's camera, and all of it on the screen as the page opens, without scrolling sideways.
      const qr = await page.locator('figure.qr svg').boundingBox();
      expect(qr).not.toBeNull();
      expect(Math.min(qr!.width, qr!.height)).toBeGreaterThanOrEqual(150);
      expect(qr!.x).toBeGreaterThanOrEqual(0);
      expect(qr!.x + qr!.width).toBeLessThanOrEqual(PHONE.width);
      expect(qr!.y).toBeGreaterThanOrEqual(0);
      expect(qr!.y + qr!.height).toBeLessThanOrEqual(PHONE.height);
      await expect(page.evaluate<number>('document.documentElement.scrollWidth')).resolves.toBeLessThanOrEqual(PHONE.width);
      const secret = page.locator('#secret');
      await expect(secret.isVisible()).resolves.toBe(true);
      const secretBox = await secret.boundingBox();
      expect(secretBox!.x + secretBox!.width).toBeLessThanOrEqual(PHONE.width);
      const key = (await secret.textContent())?.replace(/\s/g, '') ?? '';
      expect(key).toMatch(/^[A-Z2-7]{32}$/);

      const artifacts = path.join(process.cwd(), 'test', 'artifacts');
      await mkdir(artifacts, { recursive: true });
      await page.screenshot({ path: path.join(artifacts, `totp-enroll-${colorScheme}.png`), fullPage: true });

      await page.getByRole('textbox', { name: 'Code' }).fill(appFor(key)());
      await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
      await page.getByRole('heading', { name: 'Two-step verification is on' }).waitFor();
      const codes = await page.locator('#recovery-codes li').allTextContents();
      expect(codes).toHaveLength(10);
      for (const code of codes) expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
      await page.getByRole('button', { name: 'I have saved them: continue to Web App' }).click();
      const callback = await clickThroughToApp(page, 'Allow'); // a third-party client: consent comes after the sign-in
      expect(await idTokenClaims(flow, callback)).toMatchObject({ sub: user.userId, amr: ['pwd', 'otp', 'mfa'] });
      expect(consoleErrors).toEqual([]);
    },
  );

  /** A person who set up the app earlier (at this 30-second step, which is then spent), and their app. */
  async function enrolledUser() {
    const user = await createUser(server);
    const key = new Secret({ size: 20 }).base32;
    const app = appFor(key);
    const enrolled = await server.services.twoFactor.enroll(user.userId, key, app());
    expect(enrolled).toHaveLength(10);
    return { user, app };
  }

  test.each(['light', 'dark'] as const)(
    'after the password (%s scheme), the code field has the focus and asks for a one-time code; a wrong code is announced and tied to the field; the next code, typed and sent with Enter, signs in',
    async (colorScheme) => {
      const { user, app } = await enrolledUser();
      const page = await openPage({ colorScheme });
      const consoleErrors = consoleErrorsOf(page);
      const flow = await startFlow();
      await page.goto(flow.url.href);
      await signIn(page, user.email, PASSWORD);
      await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();

      const field = page.getByRole('textbox', { name: 'Code' });
      await expect(page.evaluate<string | undefined>('document.activeElement?.id')).resolves.toBe('code');
      await expect(field.getAttribute('autocomplete')).resolves.toBe('one-time-code');
      await expect(field.getAttribute('inputmode')).resolves.toBe('numeric');
      await expect(field.getAttribute('aria-invalid')).resolves.toBeNull();

      // The keyboard alone: the focus is in the field, and Enter sends the form.
      await page.keyboard.type(wrongCodeFor(app));
      await page.keyboard.press('Enter');
      await page.getByRole('alert').waitFor();
      await expect(page.title()).resolves.toBe('Error: Two-step verification');
      const errorId = await page.getByRole('alert').getAttribute('id');
      expect(errorId).toBeTruthy();
      await expect(page.locator(`#${errorId}`).textContent()).resolves.toContain('That code is not right');
      await expect(field.getAttribute('aria-invalid')).resolves.toBe('true');
      await expect(field.getAttribute('aria-describedby')).resolves.toBe(errorId);
      await expect(page.evaluate<string | undefined>('document.activeElement?.id')).resolves.toBe('code');

      await page.keyboard.type(app(1)); // the step used to set it up is spent: the next one's code, as a phone shows it soon
      await page.keyboard.press('Enter');
      const callback = await clickThroughToApp(page, 'Allow');
      expect(await idTokenClaims(flow, callback)).toMatchObject({ sub: user.userId, amr: ['pwd', 'otp', 'mfa'] });
      // The wrong code's answer is a page sent with 400, which Chromium logs as a failed load; nothing else.
      expect(consoleErrors).toEqual(['Failed to load resource: the server responded with a status of 400 (Bad Request)']);
    },
  );
});

describe('the account page in a browser', () => {
  test('a person signs in at /account, changes their password there, and the page breaks no CSP rule on a phone', async () => {
    const viewport = { width: 375, height: 667 };
    const page = await openPage({ viewport });
    const cspErrors = cspErrorsOf(page);
    const person = await createUser(server);
    await page.goto(`${server.issuer}/account`);
    await signIn(page, person.email, PASSWORD);
    await page.getByRole('heading', { name: 'Your account' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/account');

    const scrollWidth = await page.evaluate<number>('document.documentElement.scrollWidth');
    expect(scrollWidth).toBeLessThanOrEqual(viewport.width);
    const artifacts = path.join(process.cwd(), 'test', 'artifacts');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'account.png'), fullPage: true });

    await page.fill('#current', PASSWORD);
    await page.fill('#new-password', 'a brand new passphrase');
    await page.fill('#repeat', 'a brand new passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Your password was changed').waitFor();
    expect(await server.services.users.verifyPassword(person.email, 'a brand new passphrase')).toBeDefined();
    expect(cspErrors).toEqual([]);
  });
});

describe('a forgotten password in a browser', () => {
  test('"Forgot your password?" on a phone: the link by mail, a new password, then signing in with it', async () => {
    const viewport = { width: 375, height: 667 };
    const page = await openPage({ viewport });
    const cspErrors = cspErrorsOf(page);
    const person = await createUser(server);
    const flow = await startFlow();
    await page.goto(flow.url.href);
    const artifacts = path.join(process.cwd(), 'test', 'artifacts');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'login-with-reset-link.png'), fullPage: true });
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Reset your password' }).waitFor();
    await page.fill('#email', person.email);
    await page.getByRole('button', { name: 'Send me a link' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();

    const link = linkIn(await mail.next(person.email), `${server.issuer}/account/password-reset/new?token=`);
    await page.goto(link);
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await page.screenshot({ path: path.join(artifacts, 'password-reset.png'), fullPage: true });
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(viewport.width);
    await page.fill('#new-password', 'a brand new passphrase');
    await page.fill('#repeat', 'a brand new passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('heading', { name: 'Password changed' }).waitFor();

    // Back to the app's sign-in: the new password gets through to its consent page.
    await page.goto(flow.url.href);
    await signIn(page, person.email, 'a brand new passphrase');
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    expect(cspErrors).toEqual([]);
  });
});

describe('a temporary password in a browser', () => {
  test('signs in once, to "Choose a new password" on a phone; the chosen one goes on to the app\'s consent page', async () => {
    const viewport = { width: 375, height: 667 };
    const page = await openPage({ viewport });
    const cspErrors = cspErrorsOf(page);
    const person = await createUser(server);
    await server.services.users.setPassword(person.email, 'given over the phone', { temporary: true });
    const flow = await startFlow();
    await page.goto(flow.url.href);
    await signIn(page, person.email, 'given over the phone');
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(viewport.width);
    await page.fill('#new-password', 'my own new passphrase');
    await page.fill('#repeat', 'my own new passphrase');
    await page.getByRole('button', { name: 'Change password and continue' }).click();
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    expect(cspErrors).toEqual([]);
  });
});

describe('creating an account in a browser', () => {
  test('"Create one" on a phone: the form, then straight on to the app\'s consent page', async () => {
    const viewport = { width: 375, height: 667 };
    const page = await openPage({ viewport });
    const cspErrors = cspErrorsOf(page);
    const flow = await startFlow();
    await page.goto(flow.url.href);
    await page.getByRole('link', { name: 'Create one' }).click();
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(viewport.width);
    await page.fill('#name', 'Browser Person');
    await page.fill('#email', `browser.${Date.now()}@example.test`);
    await page.fill('#password', 'a brand new passphrase');
    await page.fill('#repeat', 'a brand new passphrase');
    await page.getByRole('button', { name: 'Create account' }).click();
    // A third-party app: the new person is asked to allow it, signed in already.
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    expect(cspErrors).toEqual([]);
  });
});
