/**
 * First-party clients (our own apps) do not ask the user for consent: when one asks for scopes, the grant is
 * created or extended here, before the consent prompt is considered. Third-party clients go through the
 * consent page, which records the grant (src/interaction/).
 */
import type { Grant, KoaContextWithOIDC } from 'oidc-provider';
import type { Catalog } from './catalog.js';

export function firstPartyGrantLoader(catalog: Catalog) {
  return async (ctx: KoaContextWithOIDC): Promise<Grant | undefined> => {
    const { client, session, provider } = ctx.oidc;
    if (!client || !session) return undefined;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    const existing = grantId ? await provider.Grant.find(grantId) : undefined;
    const accountId = session.accountId;
    if (!accountId || !(await catalog.client(client.clientId))?.firstParty) return existing;

    const grant = existing ?? new provider.Grant({ clientId: client.clientId, accountId });
    grantRequested(ctx, grant);
    await grant.save();
    return grant;
  };
}

/** Adds to the grant exactly what this authorization request asks for. */
export function grantRequested(ctx: KoaContextWithOIDC, grant: Grant): void {
  const oidcScopes = [...ctx.oidc.requestParamOIDCScopes];
  if (oidcScopes.length > 0) grant.addOIDCScope(oidcScopes.join(' '));
  // Claims asked for one by one (the claims parameter, ./claims-parameter.ts).
  const claims = [...ctx.oidc.requestParamClaims];
  if (claims.length > 0) grant.addOIDCClaims(claims);
  const requested = ctx.oidc.requestParamScopes;
  for (const [indicator, resourceServer] of Object.entries(ctx.oidc.resourceServers ?? {})) {
    const scopes = [...requested].filter((scope) => resourceServer.scopes.has(scope));
    if (scopes.length > 0) grant.addResourceScope(indicator, scopes.join(' '));
  }
}
