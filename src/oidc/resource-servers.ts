/**
 * APIs registered on this server (the `apis` table) as RFC 8707 resource servers: which scopes each offers,
 * the lifetime and format of its access tokens. A client-credentials request that names no resource gets the
 * default API; one that names no scope gets every scope the client may have on that API (see scopesAllowed).
 */
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { ApiRecord } from '../apis/apis.js';
import type { Catalog } from './catalog.js';

const isClientCredentials = (ctx: KoaContextWithOIDC) =>
  ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';

/**
 * Which of an API's scopes a client may get. A service (client credentials, no user to consent) gets exactly the
 * scopes it is registered with: least privilege, so an `authz clients add --type service` without `--scope` gets
 * tokens for the API that carry no scope at all. A user-facing client registered with none of the API's scopes may
 * ask for any of them, because the user consents to each (first-party apps are yours); one registered with some
 * gets only those.
 */
export function scopesAllowed(api: ApiRecord, clientScope: string | undefined, forService: boolean): string[] {
  const named = new Set((clientScope ?? '').split(' ').filter(Boolean));
  const overlap = api.scopes.filter((scope) => named.has(scope));
  return overlap.length > 0 || forService ? overlap : api.scopes;
}

/**
 * A service asking for scopes of which it may have none gets `invalid_scope` (RFC 6749 §5.2), as Hydra answers,
 * rather than a token that carries no scope and fails at the API. Asking for some it may have and some it may
 * not, it gets the ones it may have, listed in the response's `scope` (RFC 6749 §3.3), as Keycloak does.
 */
function refuseWhenNoneGranted(requested: string, allowed: readonly string[], indicator: string): void {
  const asked = requested.split(' ').filter(Boolean);
  if (asked.length === 0 || asked.some((scope) => allowed.includes(scope))) return;
  const may = allowed.length > 0 ? `it may have ${allowed.join(' ')}` : 'it is registered with none of its scopes';
  throw new errors.InvalidScope(`the client may not have ${asked.join(' ')} on ${indicator}: ${may}`, requested);
}

/**
 * How an API's JWT access tokens are signed: with its `signingAlg`, while keys/ holds a key for it. Without one
 * (taken away after the API was registered) the request is refused naming the API, rather than failing to sign.
 */
export function jwtSigningOf(api: ApiRecord, signingAlgs: readonly string[]): { sign: { alg: ApiRecord['signingAlg'] } } {
  if (api.accessTokenFormat === 'jwt' && !signingAlgs.includes(api.signingAlg)) {
    throw new errors.InvalidTarget(`${api.indicator} has its access tokens signed ${api.signingAlg}, and this server has no ${api.signingAlg} key`);
  }
  return { sign: { alg: api.signingAlg } };
}

/** `signingAlgs`: the algorithms keys/ holds keys for. */
export function resourceIndicators(catalog: Catalog, signingAlgs: readonly string[]) {
  return {
    enabled: true,
    defaultResource: async (ctx: KoaContextWithOIDC, _client: unknown, oneOf?: readonly string[]) => {
      if (oneOf) return oneOf;
      if (!isClientCredentials(ctx)) return undefined;
      return (await catalog.defaultApi())?.indicator;
    },
    // The token endpoint may omit `resource` when exactly one was granted at authorization time.
    useGrantedResource: async () => true,
    getResourceServerInfo: async (ctx: KoaContextWithOIDC, indicator: string, client: { clientId: string }) => {
      const api = await catalog.api(indicator);
      if (!api) throw new errors.InvalidTarget(`no API is registered for the resource indicator ${indicator}`);
      const record = await catalog.client(client.clientId);
      const scopes = scopesAllowed(api, record?.scope, isClientCredentials(ctx));
      const params = ctx.oidc.params;
      if (isClientCredentials(ctx) && params) {
        if (!params.scope) params.scope = scopes.join(' ');
        else refuseWhenNoneGranted(String(params.scope), scopes, api.indicator);
      }
      return {
        scope: scopes.join(' '),
        audience: api.indicator,
        accessTokenTTL: api.accessTokenTtl,
        accessTokenFormat: api.accessTokenFormat as 'jwt' | 'opaque',
        jwt: jwtSigningOf(api, signingAlgs),
      };
    },
  };
}
