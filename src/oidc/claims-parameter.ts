/**
 * The `claims` request parameter (OpenID Connect Core §5.5): an app asks for single claims, in the ID token or at
 * userinfo, rather than whole scopes (`claims={"id_token":{"email":{"essential":true}}}`). oidc-provider parses it,
 * asks for consent to the claims not yet granted (the consent page names them: src/interaction/pages.ts) and
 * releases only what was granted. Checked here on top of the library's own rules: the attributes of a scope of
 * their own (USER_CLAIMS `hr:employee_id`) go only to apps registered for that scope, as when asked by scope, and
 * an `acr` asked for here counts as asked for in `acr_values` (../accounts/two-factor.ts).
 */
import { type ClaimsParameter, errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { Catalog } from './catalog.js';

const CONTAINERS = ['userinfo', 'id_token'] as const;

const isJsonObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The acr values a `claims` parameter asks for: its `acr` members' `value` and `values`. */
export function acrValuesClaimed(claims: unknown): string[] {
  if (typeof claims !== 'string') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(claims);
  } catch {
    return []; // oidc-provider answers invalid_request for it
  }
  if (!isJsonObject(parsed)) return [];
  return CONTAINERS.flatMap((container) => {
    const acr = isJsonObject(parsed[container]) ? parsed[container].acr : undefined;
    if (!isJsonObject(acr)) return [];
    const values = [acr.value, ...(Array.isArray(acr.values) ? acr.values : [])];
    return values.filter((value): value is string => typeof value === 'string');
  });
}

export function claimsParameter(catalog: Catalog, claimScopes: Readonly<Record<string, string[]>>) {
  const scopeOfClaim = new Map(Object.entries(claimScopes).flatMap(([scope, claims]) => claims.map((claim) => [claim, scope] as const)));
  return {
    enabled: true as const,
    assertClaimsParameter: async (_ctx: KoaContextWithOIDC, claims: ClaimsParameter, client: { clientId: string }) => {
      const registered = new Set(((await catalog.client(client.clientId))?.scope ?? '').split(' '));
      for (const container of CONTAINERS) {
        const members = claims[container];
        if (members === undefined) continue;
        for (const [claim, request] of Object.entries(members as Record<string, unknown>)) {
          if (request !== null && !isJsonObject(request)) throw new errors.InvalidRequest(`claims.${container}.${claim} must be null or an object`);
          const scope = scopeOfClaim.get(claim);
          if (scope && !registered.has(scope)) {
            throw new errors.InvalidRequest(`claims.${container}.${claim} is released only to apps registered for the ${scope} scope`);
          }
        }
      }
    },
  };
}
