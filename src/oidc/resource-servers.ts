/**
 * APIs registered on this server (the `apis` table) as RFC 8707 resource servers: which scopes each offers,
 * the lifetime and format of its access tokens. A client-credentials request that names no resource gets the
 * default API; one that names no scope gets every scope the client may have on that API.
 */
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { ApiRecord } from '../apis/apis.js';
import type { Catalog } from './catalog.js';

const isClientCredentials = (ctx: KoaContextWithOIDC) =>
  ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';

/** A client whose `scope` names no scope of this API may have all of them; otherwise only those it names. */
function scopesAllowed(api: ApiRecord, clientScope: string | undefined): string[] {
  const named = new Set((clientScope ?? '').split(' ').filter(Boolean));
  const overlap = api.scopes.filter((scope) => named.has(scope));
  return overlap.length > 0 ? overlap : api.scopes;
}

export function resourceIndicators(catalog: Catalog) {
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
      const scopes = scopesAllowed(api, record?.scope);
      const params = ctx.oidc.params;
      if (isClientCredentials(ctx) && params && !params.scope) params.scope = scopes.join(' ');
      return {
        scope: scopes.join(' '),
        audience: api.indicator,
        accessTokenTTL: api.accessTokenTtl,
        accessTokenFormat: api.accessTokenFormat as 'jwt' | 'opaque',
        jwt: { sign: { alg: 'RS256' as const } },
      };
    },
  };
}
