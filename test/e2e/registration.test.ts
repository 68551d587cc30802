/**
 * People creating their own account (REGISTRATION=open), as a person and an app see it: "Create one" on the login
 * page → name, email, password → signed in and back at the app with a code, which openid-client redeems for an ID
 * token of the new person (`email_verified: false`); the confirmation mail (over SMTP to a real SMTP server) turns
 * that true. A taken address, a weak password and too many accounts from one address are refused with a reason;
 * with REGISTRATION=off (the default) nothing of it is offered.
 */
import * as oidc from 'openid-client';
import { type MailCatcher, linkIn, startMailCatcher } from '../support/mail-catcher.js';
import { codeFlowRequest, createUser, createWebClient, discover } from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { formOf, type Page, passSignInPages, textOf, UserAgent } from '../support/user-agent.js';

let mail: MailCatcher;
let server: TestServer;
let rp: oidc.Configuration;

beforeAll(async () => {
  mail = await startMailCatcher();
  server = await startTestServer({ env: { SMTP_URL: mail.url, REGISTRATION: 'open', REGISTRATION_ROLES: 'member' } });
  const web = await createWebClient(server, { firstParty: true });
  rp = await discover(server, web.clientId, web.secret);
});
afterAll(async () => {
  await server.close();
  await mail.close();
});

const PASSWORD = 'my own long passphrase';

/** An authorization request of the app, up to its login page; with what redeeming the code will need. */
async function startAtLoginPage(agent = new UserAgent()) {
  const request = await codeFlowRequest(rp, { scope: 'openid profile email roles' });
  const { page } = await agent.follow(request.url.href, server.issuer);
  if (!page) throw new Error('no login page');
  return { ...request, agent, login: page };
}

/** From the login page: "Create one", the form filled in and sent. */
async function register(values: Record<string, string>, flow?: Awaited<ReturnType<typeof startAtLoginPage>>) {
  const started = flow ?? (await startAtLoginPage());
  const href = /href="(\/interaction\/[^"]+\/register)"/.exec(started.login.html)?.[1];
  if (!href) throw new Error('the login page offers no "Create one"');
  const { page: form } = await started.agent.follow(`${server.issuer}${href}`, server.issuer);
  const sent = await started.agent.submit(form as Page, formOf(form as Page, '/register'), values, server.issuer);
  return { ...started, form: form as Page, sent };
}

test('a person creates an account from the login page, is signed in to the app, and confirms the address from the mail', async () => {
  const email = `newcomer.${Date.now()}@example.test`;
  const flow = await register({ name: 'New Comer', email, password: PASSWORD, repeat: PASSWORD, remember: 'yes' });
  expect(textOf(flow.form)).toContain('Create an account to continue to Web App');
  // "Keep me signed in" was ticked (LOGIN_REMEMBER_ME=ask): the session cookie outlives the browser.
  expect(flow.agent.setCookieLine('_session')).toMatch(/expires=/i);
  const callback = flow.sent.redirectedTo;
  if (!callback) throw new Error(`registration did not return to the app: ${textOf(flow.sent.page).slice(0, 300)}`);
  const tokens = await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce });
  const claims = tokens.claims();
  expect(claims).toMatchObject({ email, email_verified: false, name: 'New Comer', amr: ['pwd'] });
  expect((await oidc.fetchUserInfo(rp, tokens.access_token, String(claims?.sub))).roles).toEqual(['member']);

  // The confirmation mail came at once; pressing its button confirms the address, as userinfo then says.
  const link = linkIn(await mail.next(email), `${server.issuer}/account/email/confirm?token=`);
  const { page: confirm } = await flow.agent.follow(link, server.issuer);
  await flow.agent.submit(confirm as Page, formOf(confirm as Page, '/account/email/confirm'), {}, server.issuer);
  expect((await oidc.fetchUserInfo(rp, tokens.access_token, String(claims?.sub))).email_verified).toBe(true);

  // The new password signs in like any other.
  expect(await server.services.users.verifyPassword(email, PASSWORD)).toMatchObject({ name: 'New Comer', roles: ['member'] });
  const audited = await server.services.audit.flush().then(() => server.services.db('audit_events').where({ type: 'user_registered', account_id: claims?.sub }));
  expect(audited).toHaveLength(1);
});

test('a taken address, mismatched or weak passwords and a bad address are refused with the reason; what was typed stays', async () => {
  const taken = await createUser(server);
  const refused = await register({ name: 'Someone', email: taken.email, password: PASSWORD, repeat: PASSWORD });
  expect(refused.sent.page?.status).toBe(409);
  expect(textOf(refused.sent.page)).toContain('An account already uses this email. Sign in with it, or reset its password if you forgot it.');
  expect(refused.sent.page?.html).toContain(`value="${taken.email}"`);
  expect(refused.sent.page?.html).not.toContain(PASSWORD);

  const mismatch = await register({ email: `x.${Date.now()}@example.test`, password: PASSWORD, repeat: 'something else', remember: 'yes' });
  expect(mismatch.sent.page?.html).toMatch(/id="remember"[^>]*checked/);
  expect(mismatch.sent.page?.status).toBe(400);
  expect(textOf(mismatch.sent.page)).toContain('The passwords do not match.');
  const weak = await register({ email: `y.${Date.now()}@example.test`, password: 'short', repeat: 'short' });
  expect(weak.sent.page?.status).toBe(400);
  expect(weak.sent.page?.html).toContain('minlength="8"');
  const common = await register({ email: `z.${Date.now()}@example.test`, password: 'Sunshine1!', repeat: 'Sunshine1!' });
  expect(textOf(common.sent.page)).toContain('That password is one of the first that are guessed: choose another (a few unrelated words make a strong one).');
  const theirOwn = await register({ name: 'Charles Babbage', email: `charles.babbage.${Date.now()}@example.test`, password: 'Charles Babbage', repeat: 'Charles Babbage' });
  expect(textOf(theirOwn.sent.page)).toContain('A password may not be your email address, your name or the name of this service.');
  const notAnAddress = await register({ email: 'nobody', password: PASSWORD, repeat: PASSWORD });
  expect(textOf(notAnAddress.sent.page)).toContain('Enter your email address, such as name@example.com.');
});

test('prompt=create opens at the registration page (discovery says so): a new account goes on to the app; "I have an account" signs in instead', async () => {
  const discovered = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as { prompt_values_supported: string[] };
  expect(discovered.prompt_values_supported).toContain('create');

  const created = await codeFlowRequest(rp, { scope: 'openid email', prompt: 'create' });
  const agent = new UserAgent();
  const { page: form } = await agent.follow(created.url.href, server.issuer);
  expect(form?.html).toContain('action="/interaction/');
  const email = `created.${Date.now()}@example.test`;
  const sent = await agent.submit(form as Page, formOf(form as Page, '/register'), { name: 'Mary Somerville', email, password: PASSWORD, repeat: PASSWORD }, server.issuer);
  const tokens = await oidc.authorizationCodeGrant(rp, sent.redirectedTo as URL, { pkceCodeVerifier: created.codeVerifier, expectedState: created.state, expectedNonce: created.nonce });
  expect(tokens.claims()).toMatchObject({ email, email_verified: false });

  // Someone with an account, sent to create one: the page's link leads to the login page, and the sign-in answers the prompt.
  const existing = await createUser(server);
  const again = await codeFlowRequest(rp, { scope: 'openid email', prompt: 'create' });
  const other = new UserAgent();
  const { page: registration } = await other.follow(again.url.href, server.issuer);
  const signInHref = /href="(\/interaction\/[^"]+\?step=sign-in)"/.exec(registration?.html ?? '')?.[1];
  expect(signInHref).toBeDefined();
  const { page: login } = await other.follow(`${server.issuer}${signInHref}`, server.issuer);
  const { step } = await passSignInPages(other, { page: login }, server.issuer, { email: existing.email, password: 'correct horse battery staple' });
  const theirs = await oidc.authorizationCodeGrant(rp, step.redirectedTo as URL, { pkceCodeVerifier: again.codeVerifier, expectedState: again.state, expectedNonce: again.nonce });
  expect(theirs.claims()?.email).toBe(existing.email);
});

test('an address gets ten registrations an hour, counting attempts at taken addresses', async () => {
  // The tests above used three of this address's ten (two new accounts, a taken address): seven more get through.
  let created = 0;
  let refused: Page | undefined;
  for (let attempt = 0; attempt < 12 && !refused; attempt++) {
    const { sent, agent } = await register({ email: `burst${attempt}.${Date.now()}@example.test`, password: PASSWORD, repeat: PASSWORD });
    // Unticked, the session cookie ends with the browser.
    if (sent.redirectedTo) expect(agent.setCookieLine('_session')).not.toMatch(/expires=/i);
    if (sent.redirectedTo) created += 1;
    else if (sent.page?.status === 429) refused = sent.page;
  }
  expect(created).toBe(7);
  expect(textOf(refused)).toMatch(/Too many accounts were created from your network\. Try again in (\d+ minutes|1 hour)\./);
});

describe('when new users get a role that must use two-step verification', () => {
  let strict: TestServer;
  beforeAll(async () => {
    strict = await startTestServer({ env: { REGISTRATION: 'open', REGISTRATION_ROLES: 'staff', TOTP_REQUIRED_ROLES: 'staff' } });
  });
  afterAll(() => strict.close());

  test('the new account sets up an authenticator app before it reaches the app', async () => {
    const web = await createWebClient(strict, { firstParty: true });
    const config = await discover(strict, web.clientId, web.secret);
    const { url } = await codeFlowRequest(config);
    const agent = new UserAgent();
    const { page: login } = await agent.follow(url.href, strict.issuer);
    const uid = /\/interaction\/([^/"]+)\/login/.exec(login?.html ?? '')?.[1];
    const { page: form } = await agent.follow(`${strict.issuer}/interaction/${uid}/register`, strict.issuer);
    const sent = await agent.submit(form as Page, formOf(form as Page, '/register'), { email: `staff.${Date.now()}@example.test`, password: PASSWORD, repeat: PASSWORD }, strict.issuer);
    expect(sent.redirectedTo).toBeUndefined();
    expect(textOf(sent.page)).toContain('Set up two-step verification');
  });
});

describe('with REGISTRATION=off (the default)', () => {
  let closed: TestServer;
  beforeAll(async () => {
    closed = await startTestServer();
  });
  afterAll(() => closed.close());

  test('the login page offers no "Create one", and the form is not there', async () => {
    const web = await createWebClient(closed, { firstParty: true });
    const config = await discover(closed, web.clientId, web.secret);
    const { url } = await codeFlowRequest(config);
    const agent = new UserAgent();
    const first = await agent.follow(url.href, closed.issuer);
    expect(first.page?.html).not.toContain('/register');
    const uid = /\/interaction\/([^/"]+)\/login/.exec(first.page?.html ?? '')?.[1];
    const { page } = await agent.follow(`${closed.issuer}/interaction/${uid}/register`, closed.issuer);
    expect(page?.status).toBe(404);
    expect(textOf(page)).toContain('Accounts cannot be created here: ask your administrator for one.');
    // The sign-in itself is as it was.
    const user = await createUser(closed);
    const { step } = await passSignInPages(agent, first, closed.issuer, { email: user.email, password: 'correct horse battery staple' });
    expect(step.redirectedTo?.searchParams.get('code')).toBeTruthy();
  });

  test('prompt=create is not offered, and asking for it is an OAuth error for the app', async () => {
    const discovered = (await (await fetch(`${closed.issuer}/.well-known/openid-configuration`)).json()) as { prompt_values_supported: string[] };
    expect(discovered.prompt_values_supported).not.toContain('create');
    const web = await createWebClient(closed, { firstParty: true });
    const { url } = await codeFlowRequest(await discover(closed, web.clientId, web.secret), { prompt: 'create' });
    const location = new URL((await fetch(url, { redirect: 'manual' })).headers.get('location') ?? '');
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toBe('unsupported prompt value requested');
  });
});
