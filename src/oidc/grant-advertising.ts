/**
 * Discovery lists a grant that clients are opted into (the password grant, token exchange) only while some
 * enabled client may use it: a relying party reading `grant_types_supported` learns what it can actually do here.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Catalog } from './catalog.js';

export function advertiseOnlyWhenUsed(catalog: Catalog, grantTypes: readonly string[]) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    if (ctx.oidc?.route !== 'discovery' || ctx.status !== 200) return;
    const body = ctx.body as { grant_types_supported?: string[] };
    if (!body?.grant_types_supported) return;
    const unused = new Set<string>();
    for (const grantType of grantTypes) if (!(await catalog.anyClientWithGrant(grantType))) unused.add(grantType);
    if (unused.size === 0) return;
    ctx.body = { ...body, grant_types_supported: body.grant_types_supported.filter((grant) => !unused.has(grant)) };
  };
}
