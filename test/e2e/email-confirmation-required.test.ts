/**
 * EMAIL_CONFIRMATION_REQUIRED, as a person and an app see it: an account whose address is not confirmed signs in,
 * is held at "Confirm your email address" (the link mailed at once, over SMTP to a real SMTP server), cannot
 * continue until the link's button is pressed (on another device here), and then reaches the app, whose ID token
 * says `email_verified: true`. A confirmed account is not held; `prompt=none` gets `interaction_required`; a new
 * self-registered account is held the same way.
 */
import * as oidc from 'openid-client';
import { type MailCatcher, linkIn, startMailCatcher } from '../support/mail-catcher.js';
import { PASSWORD, codeFlowRequest, createUser, createWebClient, discover, legacyPasswordClient, signInAndRedeem } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page, textOf, UserAgent } from '../support/user-agent.js';

let mail: MailCatcher;
let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  mail = await startMailCatcher();
  server = await startTestServer({ env: { SMTP_URL: mail.url, EMAIL_CONFIRMATION_REQUIRED: 'true', REGISTRATION: 'open' } });
  const web = await createWebClient(server, { firstParty: true });
  rp = await discover(server, web.clientId, web.secret);
});
afterAll(async () => {
  await server.close();
  await mail.close();
});


const authorizationRequest = (extra: Record<string, string> = {}) => codeFlowRequest(rp, { scope: 'openid email', ...extra });

/** Presses the Confirm button of the mail's link, in a browser of its own (the phone the mail was read on). */
async function confirmFromMail(email: string) {
  const link = linkIn(await mail.next(email), `${server.issuer}/account/email/confirm?token=`);
  const phone = new UserAgent();
  const { page } = await phone.follow(link, server.issuer);
  await phone.submit(page as Page, formOf(page as Page, '/account/email/confirm'), {}, server.issuer);
}

test('an unconfirmed account is held after its password until the address is confirmed, then reaches the app', async () => {
  const user = await createUser(server);
  await server.services.users.update(user.email, { emailVerified: false });
  const request = await authorizationRequest();
  const agent = new UserAgent();
  const { page: login } = await agent.follow(request.url.href, server.issuer);
  const { page: held } = await agent.submit(login as Page, formOf(login as Page, '/login'), { email: user.email, password: PASSWORD }, server.issuer);
  expect(held?.status).toBe(200);
  expect(textOf(held)).toContain(`We sent a link to ${user.email}.`);

  // Continuing before the link is pressed only says so.
  const early = await agent.submit(held as Page, formOf(held as Page, '/confirm-email/continue'), {}, server.issuer);
  expect(early.page?.status).toBe(400);
  expect(textOf(early.page)).toContain('Your address is not confirmed yet.');
  // Showing the page again mails no second link while the first works; asking for one does.
  const { page: again } = await agent.follow(held?.url as string, server.issuer);
  expect(again?.status).toBe(200);
  const resent = await agent.submit(again as Page, formOf(again as Page, '/confirm-email/send'), {}, server.issuer);
  expect(textOf(resent.page)).toContain(`We sent another link to ${user.email}.`);

  await confirmFromMail(user.email);
  await mail.next(user.email);
  expect(mail.received.filter((each) => each.to === user.email)).toHaveLength(2);
  const done = await agent.submit(resent.page as Page, formOf(resent.page as Page, '/confirm-email/continue'), {}, server.issuer);
  const callback = done.redirectedTo;
  if (!callback) throw new Error(`continue did not reach the app: ${textOf(done.page).slice(0, 300)}`);
  const tokens = await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
  expect(tokens.claims()).toMatchObject({ email: user.email, email_verified: true });
});

test('a confirmed account goes straight through; prompt=none for an unconfirmed one is interaction_required', async () => {
  const confirmed = await createUser(server);
  const { tokens } = await signInAndRedeem(rp, confirmed, { scope: 'openid email' });
  expect(tokens.claims()?.email_verified).toBe(true);

  const unconfirmed = await createUser(server);
  await server.services.users.update(unconfirmed.email, { emailVerified: false });
  const agent = new UserAgent();
  const first = await authorizationRequest();
  const { page: login } = await agent.follow(first.url.href, server.issuer);
  await agent.submit(login as Page, formOf(login as Page, '/login'), { email: unconfirmed.email, password: PASSWORD }, server.issuer);
  // The session exists; a silent request of the app cannot show the page, and is told so.
  const silent = await authorizationRequest({ prompt: 'none' });
  const { redirectedTo } = await agent.follow(silent.url.href, server.issuer);
  expect(redirectedTo?.searchParams.get('error')).toBe('interaction_required');
  await mail.next(unconfirmed.email);
});

test('a self-registered account is held the same way, with one mail', async () => {
  const email = `joiner.${Date.now()}@example.test`;
  const agent = new UserAgent();
  const request = await authorizationRequest();
  const { page: login } = await agent.follow(request.url.href, server.issuer);
  const uid = /\/interaction\/([^/"]+)\/login/.exec(login?.html ?? '')?.[1];
  const { page: form } = await agent.follow(`${server.issuer}/interaction/${uid}/register`, server.issuer);
  const { page: held } = await agent.submit(form as Page, formOf(form as Page, '/register'), { email, password: 'my own long passphrase', repeat: 'my own long passphrase' }, server.issuer);
  expect(textOf(held)).toContain(`We sent a link to ${email}.`);
  await confirmFromMail(email);
  const done = await agent.submit(held as Page, formOf(held as Page, '/confirm-email/continue'), {}, server.issuer);
  expect(done.redirectedTo?.searchParams.get('code')).toBeTruthy();
  expect(mail.received.filter((each) => each.to === email)).toHaveLength(1);
});

test('the password grant, which has no page to confirm on, refuses an unconfirmed account and says how to go on', async () => {
  const user = await createUser(server);
  await server.services.users.update(user.email, { emailVerified: false });
  const legacy = await legacyPasswordClient(server);
  const grant = () => oidc.genericGrantRequest(legacy, 'password', { username: user.email, password: PASSWORD, scope: 'openid email' });
  await expect(grant()).rejects.toMatchObject({
    error: 'invalid_grant',
    error_description: 'this account has not confirmed its email address: sign in through the browser to confirm it',
  });
  await server.services.users.update(user.email, { emailVerified: true });
  expect((await grant()).access_token).toBeTruthy();
});

test('a device’s sign-in (RFC 8628) is held the same way, and the device gets its tokens once the address is confirmed', async () => {
  const user = await createUser(server);
  await server.services.users.update(user.email, { emailVerified: false });
  const { client } = await server.services.clients.create({ type: 'device', name: 'Living-room TV' });
  const tv = await discover(server, client.clientId, undefined, oidc.None());
  const started = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid email' });

  const agent = new UserAgent();
  const { page: entry } = await agent.follow(`${server.issuer}/device`, server.issuer);
  const { page: confirmation } = await agent.submit(entry as Page, formOf(entry as Page, '/device'), { user_code: started.user_code }, server.issuer);
  const { page: login } = await agent.submit(confirmation as Page, formOf(confirmation as Page, '/device'), { confirm: 'yes' }, server.issuer);
  const { page: held } = await agent.submit(login as Page, formOf(login as Page, '/login'), { email: user.email, password: PASSWORD }, server.issuer);
  expect(textOf(held)).toContain(`We sent a link to ${user.email}.`);
  await confirmFromMail(user.email);
  // Then on to the device's consent page, as any device sign-in.
  const { page: consent } = await agent.submit(held as Page, formOf(held as Page, '/confirm-email/continue'), {}, server.issuer);
  expect(textOf(consent)).toContain('Allow Living-room TV?');
  await agent.submit(consent as Page, formOf(consent as Page, '/confirm'), {}, server.issuer);

  const tokens = await oidc.pollDeviceAuthorizationGrant(tv, { ...started, interval: 0.05 }, undefined, { signal: AbortSignal.timeout(10_000) });
  expect(tokens.claims()).toMatchObject({ email: user.email, email_verified: true });
});
