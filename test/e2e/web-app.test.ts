/**
 * A server-side web app (confidential client): code flow with our login and consent pages, an RS256 ID token
 * that verifies against JWKS, userinfo, and refresh with offline_access.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import {
  type Fixtures,
  PASSWORD,
  POST_LOGOUT_REDIRECT_URI,
  REDIRECT_URI,
  authorize,
  createUser,
  createWebClient,
  discover,
  openLoginPage,
  signInAndRedeem,
} from '../support/relying-party.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { UserAgent, parseForms, passSignInPages, signIn } from '../support/user-agent.js';

let server: TestServer;
let user: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  user = await createUser(server, ['editor', 'reader']);
});
afterAll(() => server.close());

describe('web app (confidential client)', () => {
  test.each(['client_secret_basic', 'client_secret_post'] as const)('%s: login, consent, code, tokens', async (method) => {
    const { clientId, secret } = await createWebClient(server, { authMethod: method });
    const auth = method === 'client_secret_basic' ? oidc.ClientSecretBasic(secret) : oidc.ClientSecretPost(secret);
    const config = await discover(server, clientId, secret, auth);
    const { tokens, sawLoginPage, sawConsentPage, nonce } = await signInAndRedeem(config, user, {
      scope: 'openid profile email roles',
    });
    expect(sawLoginPage).toBe(true);
    expect(sawConsentPage).toBe(true); // a third-party client asks for consent

    const idToken = tokens.id_token as string;
    expect(decodeProtectedHeader(idToken).alg).toBe('RS256');
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    const { payload } = await jwtVerify(idToken, jwks, { issuer: server.issuer, audience: clientId });
    expect(payload).toMatchObject({ sub: user.userId, iss: server.issuer, aud: clientId, nonce });
    for (const claim of ['exp', 'iat', 'auth_time']) expect(payload[claim]).toEqual(expect.any(Number));
    expect(payload.roles).toEqual(['editor', 'reader']);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, user.userId);
    expect(info).toMatchObject({ sub: user.userId, email: user.email, email_verified: true, roles: ['editor', 'reader'] });
    expect(tokens.refresh_token).toBeUndefined(); // no offline_access asked for
  });

  test('a wrong client secret is refused', async () => {
    const { clientId } = await createWebClient(server);
    const config = await discover(server, clientId, 'not-the-secret');
    const flow = await authorize(config, user);
    await expect(
      oidc.authorizationCodeGrant(config, flow.callbackUrl, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state }),
    ).rejects.toMatchObject({ error: 'invalid_client' });
  });

  test('a first-party client skips the consent page', async () => {
    const { clientId, secret } = await createWebClient(server, { firstParty: true });
    const config = await discover(server, clientId, secret);
    const { sawConsentPage, tokens } = await signInAndRedeem(config, user);
    expect(sawConsentPage).toBe(false);
    expect(tokens.claims()?.sub).toBe(user.userId);
  });

  test('consent is remembered: the second sign-in of the same session asks nothing', async () => {
    const { clientId, secret } = await createWebClient(server);
    const config = await discover(server, clientId, secret);
    const first = await signInAndRedeem(config, user);
    const second = await signInAndRedeem(config, user, { agent: first.agent });
    expect(second.sawLoginPage).toBe(false);
    expect(second.sawConsentPage).toBe(false);
    expect(second.tokens.claims()?.sub).toBe(user.userId);
  });

  test('denying consent sends access_denied back to the client', async () => {
    const { clientId, secret } = await createWebClient(server);
    const config = await discover(server, clientId, secret);
    const flow = await authorize(config, user, { consent: 'deny' });
    expect(flow.callbackUrl.searchParams.get('error')).toBe('access_denied');
    expect(flow.callbackUrl.searchParams.get('state')).toBe(flow.state);
  });

  test('plain OAuth 2.0 (no openid scope, RFC 6749 §3.3): a JWT access token for the API and no ID token', async () => {
    await server.services.apis.create({ indicator: 'https://plain-oauth.example.test', name: 'Plain', scopes: ['notes:read'] });
    const { clientId, secret } = await createWebClient(server);
    const config = await discover(server, clientId, secret);
    const { tokens, sawLoginPage } = await signInAndRedeem(config, user, { scope: 'notes:read', resource: 'https://plain-oauth.example.test' });
    expect(sawLoginPage).toBe(true);
    expect(tokens.id_token).toBeUndefined();
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, audience: 'https://plain-oauth.example.test', typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: user.userId, client_id: clientId, scope: 'notes:read' });
  });

  test('offline_access gives a refresh token that refreshes', async () => {
    const { clientId, secret } = await createWebClient(server);
    const config = await discover(server, clientId, secret);
    const { tokens } = await signInAndRedeem(config, user, { scope: 'openid email offline_access', prompt: 'consent' });
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token as string);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.claims()?.sub).toBe(user.userId);
    const info = await oidc.fetchUserInfo(config, refreshed.access_token, user.userId);
    expect(info.email).toBe(user.email);
  });

  test('a first-party app asking for offline_access with prompt=consent (as OIDC Core §11 requires) gets no consent page', async () => {
    const { clientId, secret } = await createWebClient(server, { firstParty: true });
    const config = await discover(server, clientId, secret);
    const { tokens, sawConsentPage } = await signInAndRedeem(config, user, { scope: 'openid email offline_access', prompt: 'consent' });
    expect(sawConsentPage).toBe(false);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    // A third-party app asking the same still gets the page: prompt=consent is what it is for.
    const thirdParty = await createWebClient(server);
    const again = await signInAndRedeem(await discover(server, thirdParty.clientId, thirdParty.secret), user, { scope: 'openid email offline_access', prompt: 'consent' });
    expect(again.sawConsentPage).toBe(true);
  });
});

describe('AUTHORIZATION_POST=true: POST at the authorization and logout endpoints (OpenID Connect Core §3.1.2.1)', () => {
  let postServer: TestServer;
  beforeAll(async () => {
    postServer = await startTestServer({ env: { AUTHORIZATION_POST: 'true' } });
  });
  afterAll(() => postServer?.close());

  /** A relying party's auto-submitting form: followed until the browser leaves the server. */
  const formPost = (agent: UserAgent, url: string, fields: Record<string, string>) =>
    agent.follow(url, new URL(url).origin, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    });

  test('a form-posted authorization request signs in and redeems; the session cookie is SameSite=None; logout by POST', async () => {
    const postUser = await createUser(postServer);
    const { clientId, secret } = await createWebClient(postServer, { firstParty: true });
    const config = await discover(postServer, clientId, secret);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const request = {
      client_id: clientId,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      state: 'posted',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    };
    const agent = new UserAgent();
    const { step, sawLoginPage } = await passSignInPages(agent, await formPost(agent, `${postServer.issuer}/auth`, request), postServer.issuer, {
      email: postUser.email,
      password: 'correct horse battery staple',
    });
    expect(sawLoginPage).toBe(true);
    const callback = step.redirectedTo as URL;
    expect(callback.searchParams.get('state')).toBe('posted');
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: 'posted' });
    expect(tokens.claims()?.sub).toBe(postUser.userId);
    expect(agent.setCookieLine('_session')).toMatch(/samesite=none/i);

    // Signed in: a second posted request goes straight back to the app.
    const again = await formPost(agent, `${postServer.issuer}/auth`, { ...request, state: 'again' });
    expect(again.redirectedTo?.searchParams.get('state')).toBe('again');

    const logout = await formPost(agent, `${postServer.issuer}/session/end`, {
      id_token_hint: tokens.id_token as string,
      post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
    });
    expect(logout.page?.status).toBe(200);
    expect(logout.page?.html).toContain('/session/end/confirm');
  });

  test('without it, POST is not served there and the session cookie stays SameSite=Lax', async () => {
    const response = await fetch(`${server.issuer}/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'x' }) });
    expect(response.status).toBe(404);
    const { clientId, secret } = await createWebClient(server, { firstParty: true });
    const { agent } = await authorize(await discover(server, clientId, secret), user);
    expect(agent.setCookieLine('_session')).toMatch(/samesite=lax/i);
  });
});

describe('consent submitted twice', () => {
  test('two parallel Allows (a double click) save one grant for the one sign-in', async () => {
    const { clientId } = await createWebClient(server);
    const { agent, page, form } = await openLoginPage(server, clientId);
    const { page: consent } = await agent.submit(page, form, { email: user.email, password: PASSWORD }, server.issuer);
    const allow = consent && parseForms(consent.html).find((candidate) => candidate.action.endsWith('/confirm'));
    if (!consent || !allow) throw new Error('the sign-in did not reach the consent page');

    const answers = await Promise.all([1, 2].map(() => agent.submit(consent, allow, {}, server.issuer)));
    expect(answers.some((answer) => answer.redirectedTo?.searchParams.has('code'))).toBe(true);
    const grants = (await server.services.users.listGrants(user.email)).filter((grant) => grant.clientId === clientId);
    expect(grants).toHaveLength(1);
  });
});

describe('the logout page', () => {
  test('says what each button does: "Sign out of <app> only" ends that app\'s part and keeps the session for the others', async () => {
    const [first, second] = [await createWebClient(server), await createWebClient(server)];
    const firstConfig = await discover(server, first.clientId, first.secret);
    const secondConfig = await discover(server, second.clientId, second.secret);
    const { agent } = await signInAndRedeem(firstConfig, user);
    await signInAndRedeem(secondConfig, user, { agent });

    const { page } = await agent.follow(`${server.issuer}/session/end?client_id=${first.clientId}`, server.issuer);
    const text = (page?.html ?? '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    expect(text).toContain('Sign out of all apps');
    expect(text).toContain('Sign out of Web App only');
    expect(text).not.toContain('stay signed in');
    expect(text).toContain(`through ${new URL(server.issuer).host}`);

    const form = parseForms(page?.html ?? '').find((candidate) => candidate.action.endsWith('/session/end/confirm'));
    if (!page || !form) throw new Error('no logout form');
    await agent.submit(page, form, {}, server.issuer);

    const grants = await server.services.users.listGrants(user.email);
    expect(grants.filter((grant) => grant.clientId === first.clientId)).toHaveLength(0);
    expect(grants.filter((grant) => grant.clientId === second.clientId)).toHaveLength(1);
    // Still signed in for the other app: it gets a code without the password being asked.
    const again = await signInAndRedeem(secondConfig, user, { agent });
    expect(again.sawLoginPage).toBe(false);
  });
  test('asked by no app, the page offers only "Yes, sign me out": a "No" button would keep the session and still land on "signed out"', async () => {
    const { clientId, secret } = await createWebClient(server, { firstParty: true });
    const { agent } = await signInAndRedeem(await discover(server, clientId, secret), user);
    const { page } = await agent.follow(`${server.issuer}/session/end`, server.issuer);
    const html = page?.html ?? '';
    expect(html).toContain('Yes, sign me out');
    expect(html).toContain('To stay signed in, close this page.');
    expect(html.match(/<button/g)).toHaveLength(1);
  });
});

describe('a form sent again after its step was done (Back, a second tab)', () => {
  test('Sign in sent again from the login page after signing in: the error page links on to the sign-in as it is now', async () => {
    const { clientId } = await createWebClient(server);
    const { agent, page, form } = await openLoginPage(server, clientId);
    const { page: consent } = await agent.submit(page, form, { email: user.email, password: PASSWORD }, server.issuer);
    expect(parseForms(consent?.html ?? '').some((candidate) => candidate.action.endsWith('/confirm'))).toBe(true);

    // Back to the login page as it was, and Sign in again.
    const stale = await agent.submit(page, form, { email: user.email, password: PASSWORD }, server.issuer);
    expect(stale.page?.status).toBe(400);
    const link = /<a href="([^"]+)">Continue signing in to Web App<\/a>/.exec(stale.page?.html ?? '')?.[1];
    expect(link).toMatch(/^\/interaction\/[^/]+$/);

    const { page: carriedOn } = await agent.follow(new URL(link!, server.issuer).href, server.issuer);
    expect(carriedOn?.status).toBe(200);
    expect(parseForms(carriedOn?.html ?? '').some((candidate) => candidate.action.endsWith('/confirm'))).toBe(true);
  });
});

describe('a sign-in that ended: coming back to its page (./src/interaction/restart.ts)', () => {
  /** Our login page for a request with a state the app would check on return. */
  async function loginPageFor(clientId: string) {
    const opened = await openLoginPage(server, clientId, new UserAgent(), { state: 'state-of-the-app' });
    return { ...opened, uid: new URL(opened.page.url).pathname.split('/')[2] ?? '' };
  }
  const linkOn = (html: string | undefined) => /<a href="([^"]+)">([^<]+)<\/a>/.exec(html ?? '')?.slice(1) ?? [];

  test('expired while the form was open: the page offers to start the same request again, which signs in and returns the state', async () => {
    const { clientId } = await createWebClient(server, { firstParty: true });
    const { agent, page, form, uid } = await loginPageFor(clientId);
    // The interaction's time ran out (its record is gone from the store, as when its TTL passes).
    await (await server.server.provider.Interaction.find(uid))?.destroy();

    const late = await agent.submit(page, form, { email: user.email, password: PASSWORD }, server.issuer);
    expect(late.page?.status).toBe(400);
    expect(late.page?.html).toContain('This sign-in to Web App expired before it was finished.');
    const [href, label] = linkOn(late.page?.html);
    expect(label).toBe('Start signing in to Web App again');
    const restart = new URL(href!.replaceAll('&amp;', '&'), server.issuer);
    expect(restart.pathname).toBe('/auth');
    expect(Object.fromEntries(restart.searchParams)).toMatchObject({ client_id: clientId, redirect_uri: REDIRECT_URI, state: 'state-of-the-app' });

    const { redirectedTo, sawLoginPage } = await signIn(agent, restart.href, { email: user.email, password: PASSWORD });
    expect(sawLoginPage).toBe(true);
    expect(redirectedTo.searchParams.get('state')).toBe('state-of-the-app');
    expect(redirectedTo.searchParams.get('code')).toEqual(expect.any(String));
  });

  test('Back to the login page after the app got its code: the page says the sign-in is done, and offers no restart', async () => {
    const { clientId } = await createWebClient(server, { firstParty: true });
    const { agent, page, form } = await loginPageFor(clientId);
    const done = await agent.submit(page, form, { email: user.email, password: PASSWORD }, server.issuer);
    expect(done.redirectedTo?.searchParams.has('code')).toBe(true);

    const { page: back } = await agent.follow(page.url, server.issuer);
    expect(back?.status).toBe(400);
    expect(back?.html).toContain('You have already signed in to Web App. Go back to Web App to continue.');
    expect(linkOn(back?.html)).toEqual([]);
  });

  test('Back to the login page after Cancel: the page says it was cancelled', async () => {
    const { clientId } = await createWebClient(server, { firstParty: true });
    const { agent, page } = await loginPageFor(clientId);
    const cancel = parseForms(page.html).find((candidate) => candidate.action.endsWith('/abort'));
    if (!cancel) throw new Error('no Cancel on the login page');
    const cancelled = await agent.submit(page, cancel, {}, server.issuer);
    expect(cancelled.redirectedTo?.searchParams.get('error')).toBe('access_denied');

    const { page: back } = await agent.follow(page.url, server.issuer);
    expect(back?.html).toContain('You cancelled signing in to Web App.');
  });

  test('another browser opening the same address gets the plain message: the restart is kept in the browser that was shown the page', async () => {
    const { clientId } = await createWebClient(server, { firstParty: true });
    const { page, uid } = await loginPageFor(clientId);
    await (await server.server.provider.Interaction.find(uid))?.destroy();
    const { page: elsewhere } = await new UserAgent().follow(page.url, server.issuer);
    expect(elsewhere?.status).toBe(400);
    expect(elsewhere?.html).toContain('This sign-in has expired or was already completed.');
    expect(linkOn(elsewhere?.html)).toEqual([]);
  });
});

describe('addresses a browser may open by hand', () => {
  test('after a failed sign-in, reopening the address bar (the form action) leads back to the login page', async () => {
    const { clientId } = await createWebClient(server);
    const { agent, page, form } = await openLoginPage(server, clientId);
    const failed = await agent.submit(page, form, { email: user.email, password: 'not the password' }, server.issuer);
    expect(failed.page?.status).toBe(400);
    const formAction = new URL(form.action, page.url);
    expect(formAction.pathname).toMatch(/^\/interaction\/[^/]+\/login$/);

    const reopened = await agent.request(formAction.href);
    expect(reopened.status).toBe(303);
    expect(reopened.headers.get('location')).toBe(formAction.pathname.replace(/\/login$/, ''));
    const { page: again } = await agent.follow(formAction.href, server.issuer);
    expect(again?.status).toBe(200);
    expect(again?.html).toContain('name="password"');
  });

  test('an unknown address is a page for a browser and JSON for an API client', async () => {
    const agent = new UserAgent();
    const forBrowser = await agent.request(`${server.issuer}/no/such/page`);
    expect(forBrowser.status).toBe(404);
    expect(forBrowser.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await forBrowser.text()).toContain('There is no page at this address.');

    const forApi = await fetch(`${server.issuer}/no/such/page`);
    expect(forApi.status).toBe(404);
    expect(await forApi.json()).toEqual({ error: 'not_found', error_description: 'no route for GET /no/such/page' });
  });
});
