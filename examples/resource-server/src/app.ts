/**
 * A tiny API (resource server) that accepts our JWT access tokens without calling us per request: it reads the
 * issuer's metadata once, then verifies each token offline against the issuer's JWKS (jose caches the key set
 * and refetches it when a token names an unknown kid, so key rotation needs nothing from the API).
 *
 *   GET  /public      no token needed
 *   GET  /messages    scope messages:read
 *   POST /messages    scope messages:write
 *   GET  /admin       role admin
 *
 * A token bound to a client certificate (RFC 8705 §3, `cnf.x5t#S256`) is accepted only with that certificate,
 * which the TLS-terminating proxy in front of this API passes on in `certificateHeader`; one bound to a DPoP key
 * (RFC 9449, `cnf.jkt`) is refused, since this example checks no DPoP proofs: a bound token must never pass as
 * a plain bearer token.
 *
 * Errors follow RFC 6750 §3: 401 with `WWW-Authenticate: Bearer error="invalid_token"` for a missing, expired
 * or foreign token, 403 with `error="insufficient_scope"` when the token is valid but not enough.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { Router } from '@koa/router';
import { type JWTPayload, createRemoteJWKSet, jwtVerify } from 'jose';
import Koa, { type Context, type Next } from 'koa';

export interface ResourceServerOptions {
  /** The authorization server's issuer identifier, e.g. https://id.example.com. */
  issuer: string;
  /** This API's resource indicator, as registered with `authz apis add`; tokens must carry it as `aud`. */
  audience: string;
  /** The header in which this API's proxy passes on the client certificate (URL-encoded PEM, as nginx's `$ssl_client_escaped_cert`). */
  certificateHeader?: string;
}

interface AccessToken extends JWTPayload {
  scope?: string;
  client_id?: string;
  roles?: string[];
  cnf?: { 'x5t#S256'?: string; jkt?: string };
}

class BearerError extends Error {
  constructor(
    readonly status: 401 | 403,
    readonly code: 'invalid_request' | 'invalid_token' | 'insufficient_scope',
    message: string,
    readonly scope?: string,
  ) {
    super(message);
  }
}

/** The SHA-256 thumbprint (RFC 8705 §3.1) of the certificate in a proxy's header, or undefined when there is none. */
function thumbprintOf(header: string): string | undefined {
  try {
    const certificate = new X509Certificate(decodeURIComponent(header));
    return createHash('sha256').update(certificate.raw).digest('base64url');
  } catch {
    return undefined;
  }
}

/** The JWKS URI comes from the issuer's metadata (RFC 8414), never from a token. */
async function jwksUriOf(issuer: string): Promise<URL> {
  const response = await fetch(new URL('.well-known/oauth-authorization-server', `${issuer.replace(/\/$/, '')}/`));
  if (!response.ok) throw new Error(`cannot read the metadata of ${issuer}: HTTP ${response.status}`);
  const metadata = (await response.json()) as { issuer?: string; jwks_uri?: string };
  if (metadata.issuer !== issuer || !metadata.jwks_uri) throw new Error(`${issuer} published metadata for another issuer`);
  return new URL(metadata.jwks_uri);
}

export async function createResourceServer(options: ResourceServerOptions): Promise<Koa> {
  const keys = createRemoteJWKSet(await jwksUriOf(options.issuer));

  /** Verifies the bearer token (RFC 9068: typ at+jwt, our issuer, this API as audience) into ctx.state.token. */
  const authenticate = async (ctx: Context, next: Next) => {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(ctx.get('authorization'));
    if (!match) throw new BearerError(401, 'invalid_request', 'send an access token as Authorization: Bearer <token>');
    try {
      const { payload } = await jwtVerify<AccessToken>(match[1] as string, keys, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        // The API's registered signingAlg (`apis add --signing-alg`; RS256 unless set): pinned, never the token's say.
        algorithms: ['RS256'],
      });
      ctx.state.token = payload;
    } catch (error) {
      throw new BearerError(401, 'invalid_token', `the access token is not valid here: ${(error as Error).message}`);
    }
    checkBinding(ctx, ctx.state.token as AccessToken);
    return next();
  };

  /** A sender-constrained token is good only from its holder: here, the holder of the certificate it names. */
  const checkBinding = (ctx: Context, token: AccessToken) => {
    if (token.cnf?.jkt) throw new BearerError(401, 'invalid_token', 'the access token is bound to a DPoP key, which this API does not check');
    const bound = token.cnf?.['x5t#S256'];
    if (bound === undefined) return;
    const presented = options.certificateHeader ? thumbprintOf(ctx.get(options.certificateHeader)) : undefined;
    if (presented !== bound) throw new BearerError(401, 'invalid_token', 'the access token is bound to a client certificate that was not presented');
  };

  const requireScope = (scope: string) => (ctx: Context, next: Next) => {
    const granted = ((ctx.state.token as AccessToken).scope ?? '').split(' ');
    if (!granted.includes(scope)) throw new BearerError(403, 'insufficient_scope', `this needs the scope ${scope}`, scope);
    return next();
  };

  const requireRole = (role: string) => (ctx: Context, next: Next) => {
    if (!(ctx.state.token as AccessToken).roles?.includes(role)) throw new BearerError(403, 'insufficient_scope', `this needs the role ${role}`);
    return next();
  };

  const router = new Router();
  router.get('/public', (ctx) => {
    ctx.body = { message: 'anyone may read this' };
  });
  router.get('/messages', authenticate, requireScope('messages:read'), (ctx) => {
    const token = ctx.state.token as AccessToken;
    ctx.body = { messages: [{ id: 1, text: 'hello' }], caller: token.sub ?? token.client_id };
  });
  router.post('/messages', authenticate, requireScope('messages:write'), (ctx) => {
    ctx.status = 201;
    ctx.body = { created: true };
  });
  router.get('/admin', authenticate, requireRole('admin'), (ctx) => {
    ctx.body = { message: 'welcome, administrator' };
  });

  const app = new Koa();
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (!(error instanceof BearerError)) throw error;
      const scope = error.scope ? `, scope="${error.scope}"` : '';
      ctx.set('WWW-Authenticate', `Bearer error="${error.code}", error_description="${error.message.replace(/["\\]/g, "'")}"${scope}`);
      ctx.status = error.status;
      ctx.body = { error: error.code, error_description: error.message };
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
