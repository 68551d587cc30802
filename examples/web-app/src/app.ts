/**
 * A server-rendered web app that signs people in with our authorization server (openid-client v6: authorization
 * code + PKCE, a confidential client authenticating with client_secret_basic) and calls an API on their behalf.
 *
 * Backend-for-frontend: tokens never reach the browser. The browser holds only an httpOnly, SameSite=Lax cookie
 * with a random session id; the tokens live in a server-side session (an in-memory Map here: use Redis or your
 * database when you run more than one process).
 *
 *   GET  /          signed out: a "Sign in" link; signed in: the person's claims
 *   GET  /login     starts the flow (PKCE verifier, state and nonce stay in the server-side session)
 *   GET  /callback  redeems the code, checking state, nonce and PKCE
 *   GET  /api       calls the API with the access token, refreshing it when it expired or the API refuses it
 *   POST /logout    forgets the session and sends the browser to the end-session endpoint
 */
import { randomBytes } from 'node:crypto';
import { Router } from '@koa/router';
import Koa, { type Context } from 'koa';
import * as oidc from 'openid-client';

export interface WebAppOptions {
  /** The authorization server's issuer identifier, e.g. https://id.example.com. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Where this app is reached, e.g. https://app.example.com; the redirect URI is `<baseUrl>/callback`. */
  baseUrl: string;
  /** The API endpoint `/api` calls, e.g. http://localhost:4000/messages. */
  apiUrl: string;
  /** The API's resource indicator (its registered `aud`): access tokens are issued for it. */
  apiResource: string;
  /** Scopes of the API to ask for (default messages:read). */
  apiScope?: string;
  /** The session store (default: a new in-memory Map). */
  sessions?: Map<string, Session>;
}

export interface Session {
  /** While signing in: what /callback must check. */
  pending?: { codeVerifier: string; state: string; nonce: string };
  /** Once signed in. */
  tokens?: {
    accessToken: string;
    /** When the access token expires (ms since the epoch). */
    expiresAt: number;
    refreshToken?: string;
    idToken: string;
    claims: Record<string, unknown>;
  };
  /** A refresh in progress, shared by concurrent requests (refresh tokens rotate: only one may be used). */
  refreshing?: Promise<void>;
}

const SCOPE = 'openid profile email roles offline_access';
const COOKIE = 'sid';
/** Refresh this long before the access token expires. */
const EXPIRY_SKEW_MS = 10_000;

const escapeHtml = (value: unknown) =>
  String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const page = (title: string, body: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;

/** openid-client refuses plain http; allow it only for an issuer on this machine (local development). */
function isLoopback(url: URL) {
  return url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
}

export async function createWebApp(options: WebAppOptions): Promise<Koa> {
  const issuer = new URL(options.issuer);
  const config = await oidc.discovery(
    issuer,
    options.clientId,
    undefined,
    oidc.ClientSecretBasic(options.clientSecret),
    isLoopback(issuer) ? { execute: [oidc.allowInsecureRequests] } : undefined,
  );
  const baseUrl = options.baseUrl.replace(/\/$/, '');
  const redirectUri = `${baseUrl}/callback`;
  const secureCookie = new URL(baseUrl).protocol === 'https:';
  const sessions = options.sessions ?? new Map<string, Session>();

  const sessionOf = (ctx: Context): Session | undefined => {
    const id = ctx.cookies.get(COOKIE);
    return id ? sessions.get(id) : undefined;
  };
  /** A new session under a new id (also on sign-in, so that an id set before sign-in is never a signed-in one). */
  const startSession = (ctx: Context, session: Session) => {
    const old = ctx.cookies.get(COOKIE);
    if (old) sessions.delete(old);
    const id = randomBytes(32).toString('base64url');
    sessions.set(id, session);
    ctx.cookies.set(COOKIE, id, { httpOnly: true, sameSite: 'lax', secure: secureCookie, path: '/', overwrite: true });
  };
  const endSession = (ctx: Context) => {
    const id = ctx.cookies.get(COOKIE);
    if (id) sessions.delete(id);
    ctx.cookies.set(COOKIE, null, { httpOnly: true, sameSite: 'lax', secure: secureCookie, path: '/' });
  };

  const store = (session: Session, tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers) => {
    const previous = session.tokens;
    const idToken = tokens.id_token ?? previous?.idToken;
    if (!idToken) throw new Error('the token response has no ID token');
    session.tokens = {
      accessToken: tokens.access_token,
      expiresAt: Date.now() + (tokens.expiresIn() ?? 0) * 1000,
      // Refresh tokens rotate: keep the new one (a server that does not rotate sends none, keep the old one).
      refreshToken: tokens.refresh_token ?? previous?.refreshToken,
      idToken,
      claims: { ...previous?.claims, ...tokens.claims() },
    };
  };

  /** Uses the refresh token once, however many requests need a new access token at the same moment. */
  const refresh = (session: Session): Promise<void> => {
    session.refreshing ??= (async () => {
      const refreshToken = session.tokens?.refreshToken;
      if (!refreshToken) throw new Error('no refresh token');
      store(session, await oidc.refreshTokenGrant(config, refreshToken));
    })().finally(() => {
      session.refreshing = undefined;
    });
    return session.refreshing;
  };

  const router = new Router();

  router.get('/', (ctx) => {
    const tokens = sessionOf(ctx)?.tokens;
    ctx.set('Cache-Control', 'no-store');
    if (!tokens) {
      ctx.body = page('Example web app', '<p>You are signed out.</p><p><a href="/login">Sign in</a></p>');
      return;
    }
    const rows = Object.entries(tokens.claims)
      .map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(typeof value === 'string' ? value : JSON.stringify(value))}</td></tr>`)
      .join('');
    const name = tokens.claims.name ?? tokens.claims.email ?? tokens.claims.sub;
    ctx.body = page(
      'Example web app',
      `<p id="greeting">Signed in as ${escapeHtml(name)}</p>
<table id="claims">${rows}</table>
<p><a href="/api">Call the API</a></p>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>`,
    );
  });

  router.get('/login', async (ctx) => {
    const pending = { codeVerifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    startSession(ctx, { pending });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: `${SCOPE} ${options.apiScope ?? 'messages:read'}`,
      // RFC 8707: the access token is a JWT for this API (user-facing clients must name the API they call).
      resource: options.apiResource,
      prompt: 'consent', // offline_access needs consent (OpenID Connect Core §11)
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    });
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const pending = sessionOf(ctx)?.pending;
    if (!pending) {
      ctx.status = 400;
      ctx.body = page('Sign-in failed', '<p>This sign-in was not started here, or it expired.</p><p><a href="/login">Try again</a></p>');
      return;
    }
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.authorizationCodeGrant(config, new URL(ctx.originalUrl, baseUrl), {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      endSession(ctx);
      ctx.status = 400;
      const reason = error instanceof oidc.AuthorizationResponseError || error instanceof oidc.ResponseBodyError ? error.error : 'invalid response';
      ctx.body = page('Sign-in failed', `<p>${escapeHtml(reason)}</p><p><a href="/">Back</a></p>`);
      return;
    }
    const session: Session = {};
    store(session, tokens);
    startSession(ctx, session); // a new session id once signed in
    ctx.redirect('/');
  });

  router.get('/api', async (ctx) => {
    const session = sessionOf(ctx);
    if (!session?.tokens) {
      ctx.status = 401;
      ctx.body = { error: 'not signed in' };
      return;
    }
    const call = () => fetch(options.apiUrl, { headers: { authorization: `Bearer ${session.tokens?.accessToken}` } });
    try {
      if (Date.now() >= session.tokens.expiresAt - EXPIRY_SKEW_MS) await refresh(session);
      let response = await call();
      if (response.status === 401 && /error="invalid_token"/.test(response.headers.get('www-authenticate') ?? '')) {
        await refresh(session);
        response = await call();
      }
      ctx.status = response.status;
      ctx.body = { status: response.status, body: await response.json().catch(() => null) };
    } catch (error) {
      if (!(error instanceof oidc.ResponseBodyError) && (error as Error).message !== 'no refresh token') throw error;
      // The refresh token was revoked or expired: the person must sign in again.
      endSession(ctx);
      ctx.status = 401;
      ctx.body = { error: 'session expired, sign in again' };
    }
  });

  router.post('/logout', async (ctx) => {
    const tokens = sessionOf(ctx)?.tokens;
    endSession(ctx);
    if (!tokens) {
      ctx.redirect('/');
      return;
    }
    // Revoke the refresh token (best effort), then end the session at the authorization server as well.
    if (tokens.refreshToken) await oidc.tokenRevocation(config, tokens.refreshToken).catch(() => undefined);
    ctx.redirect(oidc.buildEndSessionUrl(config, { id_token_hint: tokens.idToken, post_logout_redirect_uri: `${baseUrl}/` }).href);
  });

  const app = new Koa();
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
