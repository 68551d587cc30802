/**
 * Passkeys in a real browser: headless Chromium with its virtual authenticator (the DevTools protocol's WebAuthn
 * domain: a platform authenticator that holds discoverable credentials and verifies its user) runs our pages'
 * script (views/assets/passkeys.js) and @simplewebauthn/browser. A person adds a passkey on the account page, then,
 * in another browser holding the same passkey, signs in to an app with it alone; the app redeems the code. The
 * issuer is http://localhost: WebAuthn accepts no IP address as a relying party, and treats localhost as secure.
 */
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { addVirtualAuthenticator, cspErrorsOf, launchChromium } from '../support/chromium.js';
import { MFA_ACR } from '../../src/accounts/two-factor.js';
import { PASSWORD, REDIRECT_URI, codeFlowRequest, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';

const APP_ORIGIN = new URL(REDIRECT_URI).origin;

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  server = await startTestServer({ host: 'localhost' });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

type Credential = { credentialId: string; isResidentCredential: boolean; rpId?: string; privateKey: string; userHandle?: string; signCount: number };

/** A fresh browser profile with a virtual platform authenticator that verifies its user (a fingerprint, say). */
async function browserWithAuthenticator(): Promise<{ page: Page; cdp: CDPSession; authenticatorId: string; cspErrors: string[] }> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  const cspErrors = cspErrorsOf(page);
  const { cdp, authenticatorId } = await addVirtualAuthenticator(context, page);
  return { page, cdp, authenticatorId, cspErrors };
}

async function credentialsOf(cdp: CDPSession, authenticatorId: string): Promise<Credential[]> {
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  return credentials as Credential[];
}

test('a passkey added on the account page signs its owner in to apps in other browsers, from the email field\'s autofill or by the button, with no password', async () => {
  const person = await createUser(server);

  // On the account page: the password first, then the authenticator makes the passkey.
  const laptop = await browserWithAuthenticator();
  await laptop.page.goto(`${server.issuer}/account`);
  await laptop.page.fill('#email', person.email);
  await laptop.page.fill('#password', PASSWORD);
  await laptop.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await laptop.page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  await expect(laptop.page.locator('#passkey-unsupported').isVisible()).resolves.toBe(false);

  await laptop.page.fill('#passkey-name', 'Work laptop');
  await laptop.page.fill('#current-for-passkey', 'not my password');
  await laptop.page.getByRole('button', { name: 'Add a passkey' }).click();
  await laptop.page.getByText('That is not your current password.').waitFor();
  // Refused before the ceremony: the authenticator was never asked.
  expect(await credentialsOf(laptop.cdp, laptop.authenticatorId)).toEqual([]);

  await laptop.page.fill('#current-for-passkey', PASSWORD);
  await laptop.page.getByRole('button', { name: 'Add a passkey' }).click();
  await laptop.page.getByText('Your passkey was added.').waitFor();
  await expect(laptop.page.getByText('Work laptop', { exact: true }).isVisible()).resolves.toBe(true);
  const [credential] = await credentialsOf(laptop.cdp, laptop.authenticatorId);
  expect(credential).toMatchObject({ isResidentCredential: true, rpId: 'localhost', userHandle: Buffer.from(person.userId).toString('base64') });
  expect(laptop.cspErrors).toEqual([]);

  // Other browsers holding the same passkey (as a synced one would be), each with an app sending it to sign in.
  const { clientId, secret } = await createWebClient(server, { firstParty: true });
  const config = await discover(server, clientId, secret);
  // Each browser gets the passkey as the last one left it: its signature counter moved on with each use, and a
  // counter that goes back is refused as a cloned authenticator.
  let held = credential as Credential;
  const signInWith = async (phone: Awaited<ReturnType<typeof browserWithAuthenticator>>, act: () => Promise<unknown>) => {
    await phone.cdp.send('WebAuthn.addCredential', { authenticatorId: phone.authenticatorId, credential: held });
    const request = await codeFlowRequest(config, { scope: 'openid email' });
    const [callback] = await Promise.all([phone.page.waitForRequest((sent) => new URL(sent.url()).origin === APP_ORIGIN), phone.page.goto(request.url.href).then(act)]);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback.url()), {
      pkceCodeVerifier: request.codeVerifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: person.userId, email: person.email, acr: MFA_ACR, amr: expect.arrayContaining(['user', 'mfa']) });
    expect(phone.cspErrors).toEqual([]);
    [held] = (await credentialsOf(phone.cdp, phone.authenticatorId)) as [Credential];
  };

  // Where the browser offers passkeys in the email field's autofill, choosing it signs in (the virtual
  // authenticator chooses at once, as a person picking it from the list would).
  await signInWith(await browserWithAuthenticator(), async () => {});

  // Where it does not, the button does.
  const withoutAutofill = await browserWithAuthenticator();
  await withoutAutofill.page.addInitScript({ content: 'PublicKeyCredential.isConditionalMediationAvailable = async () => false;' });
  await signInWith(withoutAutofill, () => withoutAutofill.page.getByRole('button', { name: 'Sign in with a passkey' }).click());
});

test('cancelling the passkey prompt leaves the login page with a sentence, and the password still works', async () => {
  const person = await createUser(server);
  const { page, cdp, authenticatorId, cspErrors } = await browserWithAuthenticator();
  // An authenticator whose user does not verify: the browser refuses the ceremony, as when the person cancels.
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
  const { clientId, secret } = await createWebClient(server, { firstParty: true });
  const request = await codeFlowRequest(await discover(server, clientId, secret));
  await page.goto(request.url.href);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.getByText(/The passkey was not used|could not use a passkey/).waitFor();

  await page.fill('#email', person.email);
  await page.fill('#password', PASSWORD);
  const [callback] = await Promise.all([
    page.waitForRequest((sent) => new URL(sent.url()).origin === APP_ORIGIN),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  expect(new URL(callback.url()).searchParams.get('code')).toEqual(expect.any(String));
  expect(cspErrors).toEqual([]);
});

test('a person goes without a password: removes it once a passkey is there, and adds the next passkey with none asked', async () => {
  const person = await createUser(server);
  const { page, cdp, authenticatorId, cspErrors } = await browserWithAuthenticator();
  await page.goto(`${server.issuer}/account`);
  await page.fill('#email', person.email);
  await page.fill('#password', PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  await expect(page.getByText('Remove password').count()).resolves.toBe(0);
  await page.fill('#passkey-name', 'Work laptop');
  await page.fill('#current-for-passkey', PASSWORD);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByText('Your passkey was added.').waitFor();

  await page.getByText('Remove password').click();
  await page.fill('#current-for-removal', PASSWORD);
  await page.getByRole('button', { name: 'Remove my password' }).click();
  await page.getByText('Your password was removed').waitFor();
  await expect(page.locator('#current-for-passkey').count()).resolves.toBe(0);

  // The next passkey, from another authenticator (this one already holds one for the account): no password field.
  const [first] = await credentialsOf(cdp, authenticatorId);
  await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: (first as Credential).credentialId });
  await page.fill('#passkey-name', 'Phone');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByText('Your passkey was added.').waitFor();
  await expect(page.getByText('Phone', { exact: true }).isVisible()).resolves.toBe(true);
  expect((await server.services.passkeys.list(person.userId)).map((passkey) => passkey.name).sort()).toEqual(['Phone', 'Work laptop']);
  expect(cspErrors).toEqual([]);
});
