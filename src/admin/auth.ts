/**
 * Who may call the admin API: a bearer access token this server issued for the admin API resource, checked
 * offline against our own published signing keys (RFC 9068: typ at+jwt, iss, aud, exp), carrying the `admin`
 * scope (or `admin:read` for reads).
 *
 * The resource-server hook grants a client every scope of an API its registration does not restrict
 * (src/oidc/resource-servers.ts), so a token's scope alone would let any service client administer the server.
 * The token must therefore also belong to an enabled service client whose own registered scope names the admin
 * scope used: `authz clients add --type service --name ops --scope admin`.
 */
import type { JWTPayload } from 'jose';
import type { Context, Middleware, Next } from 'koa';
import type { Catalog } from '../oidc/catalog.js';
import { type JwtAccessTokenOptions, jwtAccessTokenVerifier } from '../oidc/jwt-access-tokens.js';

export const ADMIN_API_PATH = '/admin/v1';
/** Full read and write access. */
export const ADMIN_SCOPE = 'admin';
/** Read-only access (GET requests). */
export const ADMIN_READ_SCOPE = 'admin:read';

/** The admin API's resource indicator: the `aud` of its tokens and the `resource` to ask for. */
export function adminApiIndicator(issuer: string): string {
  return `${issuer}${ADMIN_API_PATH}`;
}

export interface AdminAuthOptions extends JwtAccessTokenOptions {
  catalog: Catalog;
}

export interface AdminCaller {
  clientId: string;
  scopes: string[];
}

const quote = (value: string) => value.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');

function challenge(ctx: Context, status: 401 | 403, error: string, description: string, scope?: string): void {
  // A request with no credentials at all gets a bare challenge (RFC 6750 §3.1); the body still says why.
  const bare = status === 401 && !ctx.get('authorization');
  const parts = bare ? [`realm="admin"`] : [`realm="admin"`, `error="${error}"`, `error_description="${quote(description)}"`];
  if (scope) parts.push(`scope="${scope}"`);
  ctx.status = status;
  ctx.set('WWW-Authenticate', `Bearer ${parts.join(', ')}`);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description };
}

const requiredScopeFor = (method: string) => (method === 'GET' || method === 'HEAD' ? ADMIN_READ_SCOPE : ADMIN_SCOPE);

function scopesSatisfy(scopes: Set<string>, required: string): boolean {
  return scopes.has(ADMIN_SCOPE) || (required === ADMIN_READ_SCOPE && scopes.has(ADMIN_READ_SCOPE));
}

export function requireAdminToken(options: AdminAuthOptions): Middleware {
  const audience = adminApiIndicator(options.issuer);
  const verify = jwtAccessTokenVerifier(options);

  return async (ctx: Context, next: Next) => {
    const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(ctx.get('authorization'));
    if (!match?.[1]) return challenge(ctx, 401, 'invalid_token', 'an access token for the admin API is required (Authorization: Bearer <token>)');
    let payload: JWTPayload;
    try {
      payload = await verify(match[1], audience);
    } catch {
      return challenge(ctx, 401, 'invalid_token', 'the access token is invalid, expired, or not for the admin API');
    }
    const clientId = typeof payload.client_id === 'string' ? payload.client_id : '';
    const client = await options.catalog.client(clientId);
    if (!client || payload.sub !== clientId || client.type !== 'service') {
      return challenge(ctx, 401, 'invalid_token', 'the access token does not belong to an enabled service client');
    }
    const registered = new Set(client.scope.split(' ').filter(Boolean));
    const granted = typeof payload.scope === 'string' ? payload.scope.split(' ').filter((scope) => registered.has(scope)) : [];
    const required = requiredScopeFor(ctx.method);
    if (!scopesSatisfy(new Set(granted), required)) {
      return challenge(ctx, 403, 'insufficient_scope', `this request needs the ${required} scope, registered on the client and granted in the token`, required);
    }
    ctx.state.adminCaller = { clientId, scopes: granted } satisfies AdminCaller;
    return next();
  };
}
