/**
 * The relying party side of end-to-end tests: openid-client v6 configured from our discovery document alone,
 * exactly as an application would, plus the fixtures (a user, clients of each kind, an API) the flows need.
 */
import * as oidc from 'openid-client';
import type { TestServer } from './server.js';
import { type HtmlForm, type Page, UserAgent, parseForms, signIn } from './user-agent.js';

export const REDIRECT_URI = 'https://app.example.test/callback';
export const POST_LOGOUT_REDIRECT_URI = 'https://app.example.test/signed-out';
export const API = 'https://api.example.test';
export const PASSWORD = 'correct horse battery staple';

/**
 * Discovery over plain http is allowed only because the test server listens on loopback. A second instance
 * shares the first one's issuer: its relying party is sent to the instance's own address, where discovery then
 * names that address's endpoints, so that every request of the flow reaches the instance under test.
 */
export async function discover(
  server: TestServer,
  clientId: string,
  /** Its secret, or its metadata as the app knows it (with the secret, if it has one). */
  clientSecretOrMetadata?: string | Partial<oidc.ClientMetadata>,
  auth?: oidc.ClientAuth,
): Promise<oidc.Configuration> {
  const options: oidc.DiscoveryRequestOptions = { execute: [oidc.allowInsecureRequests] };
  if (server.url !== server.issuer) {
    options[oidc.customFetch] = (url, init) => fetch(url.startsWith(server.issuer) ? server.url + url.slice(server.issuer.length) : url, init);
  }
  return oidc.discovery(new URL(server.issuer), clientId, clientSecretOrMetadata, auth, options);
}

export interface Fixtures {
  email: string;
  userId: string;
}

let counter = 0;

export async function createUser(server: TestServer, roles: string[] = ['reader']): Promise<Fixtures> {
  counter += 1;
  const email = `user${counter}.${Date.now()}@example.test`;
  const user = await server.services.users.create({ email, password: PASSWORD, name: `User ${counter}`, roles, emailVerified: true });
  return { email, userId: user.id };
}

export async function createWebClient(server: TestServer, options: { firstParty?: boolean; authMethod?: 'client_secret_basic' | 'client_secret_post' } = {}) {
  const { client, secret } = await server.services.clients.create({
    type: 'web',
    name: 'Web App',
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_REDIRECT_URI],
    firstParty: options.firstParty ?? false,
    tokenEndpointAuthMethod: options.authMethod,
  });
  if (!secret) throw new Error('a web client must get a secret');
  return { clientId: client.clientId, secret };
}

/** A first-party web app allowed the legacy password grant, as openid-client configured for it. */
export async function legacyPasswordClient(server: TestServer): Promise<oidc.Configuration> {
  const { client, secret } = await server.services.clients.create({
    type: 'web',
    name: 'Legacy app',
    redirectUris: [REDIRECT_URI],
    firstParty: true,
    allowPasswordGrant: true,
  });
  return discover(server, client.clientId, secret);
}

export async function createSpaClient(server: TestServer, options: { firstParty?: boolean } = {}) {
  const { client } = await server.services.clients.create({
    type: 'spa',
    name: 'Single-Page App',
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_REDIRECT_URI],
    firstParty: options.firstParty ?? true,
  });
  return { clientId: client.clientId };
}

export async function createServiceClient(server: TestServer, options: { scope?: string; roles?: string[] } = {}) {
  const { client, secret } = await server.services.clients.create({
    type: 'service',
    name: 'Nightly job',
    scope: options.scope,
    roles: options.roles,
  });
  if (!secret) throw new Error('a service client must get a secret');
  return { clientId: client.clientId, secret };
}

export interface AuthorizationOptions {
  scope?: string;
  resource?: string;
  prompt?: string;
  consent?: 'allow' | 'deny';
  /** Tick "Keep me signed in" on the login page. */
  remember?: boolean;
  agent?: UserAgent;
  /** Send no PKCE challenge (to test that the server insists on it). */
  withoutPkce?: boolean;
}

/** A code-flow authorization request with PKCE, state and nonce, and what redeeming its code will need. */
export async function codeFlowRequest(config: oidc.Configuration, parameters: Record<string, string> = {}) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...parameters,
  });
  return { url, codeVerifier, state, nonce };
}

/** Runs the browser part of the authorization code flow and returns what the client needs to redeem the code. */
export async function authorize(config: oidc.Configuration, user: Fixtures, options: AuthorizationOptions = {}) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const scope = options.scope ?? 'openid profile email';
  // A nonce belongs to OpenID Connect: a plain OAuth 2.0 request (no openid) carries none.
  const nonce = scope.split(' ').includes('openid') ? oidc.randomNonce() : undefined;
  const parameters: Record<string, string> = { redirect_uri: REDIRECT_URI, scope, state, ...(nonce ? { nonce } : {}) };
  if (!options.withoutPkce) {
    parameters.code_challenge = await oidc.calculatePKCECodeChallenge(codeVerifier);
    parameters.code_challenge_method = 'S256';
  }
  if (options.resource) parameters.resource = options.resource;
  if (options.prompt) parameters.prompt = options.prompt;
  const agent = options.agent ?? new UserAgent();
  const url = oidc.buildAuthorizationUrl(config, parameters);
  const result = await signIn(agent, url.href, { email: user.email, password: PASSWORD, consent: options.consent, remember: options.remember });
  return { ...result, agent, codeVerifier, state, nonce, callbackUrl: result.redirectedTo };
}

/** The whole code flow: sign in, then redeem the code at the token endpoint. */
export async function signInAndRedeem(config: oidc.Configuration, user: Fixtures, options: AuthorizationOptions = {}) {
  const flow = await authorize(config, user, options);
  const tokens = await oidc.authorizationCodeGrant(config, flow.callbackUrl, {
    pkceCodeVerifier: flow.codeVerifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
  });
  return { ...flow, tokens };
}

/** The login form of one of our login pages. */
export function loginFormOf(page: Page): HtmlForm {
  const form = parseForms(page.html).find((candidate) => candidate.action.endsWith('/login'));
  if (!form) throw new Error(`no login form on ${page.url}`);
  return form;
}

/** A fixed, valid S256 challenge for requests whose code is never redeemed. */
const UNUSED_CODE_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

/** A code-flow authorization request of `clientId` to `server`, whose code is never redeemed (`extra` added). */
export function authorizationRequestUrl(server: TestServer, clientId: string, extra: Record<string, string> = {}): URL {
  const url = new URL(`${server.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: REDIRECT_URI,
    code_challenge: UNUSED_CODE_CHALLENGE,
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return url;
}

/** The app redeems the code it was sent back with: the ID token's claims. */
export async function idTokenClaims(rp: oidc.Configuration, redirectedTo: URL | undefined, request: Awaited<ReturnType<typeof codeFlowRequest>>) {
  if (!redirectedTo) throw new Error('the sign-in did not reach the app');
  const tokens = await oidc.authorizationCodeGrant(rp, redirectedTo, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
  return tokens.claims() as oidc.IDToken;
}

/**
 * Starts an authorization request in `agent` (with `extra` parameters, e.g. a state) and stops at our login page,
 * for tests that post the form themselves.
 */
export async function openLoginPage(server: TestServer, clientId: string, agent = new UserAgent(), extra: Record<string, string> = {}) {
  const { page } = await agent.follow(authorizationRequestUrl(server, clientId, extra).href, server.issuer);
  if (!page) throw new Error('the authorization request did not reach the login page');
  return { agent, page, form: loginFormOf(page) };
}
