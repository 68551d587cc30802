import { claimsByScope } from '../oidc/accounts.js';

/** What the consent page tells a person each scope lets the application do. */
const OIDC_SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Know who you are (your account identifier)',
  profile: 'See your name and profile',
  email: 'See your email address',
  roles: 'See the roles you hold',
  groups: 'See the groups you belong to',
  offline_access: 'Stay connected when you are not using it',
};

/** A scope's sentence; a scope of USER_CLAIMS (`hr:employee_id`) names the attributes it releases. */
export function describeOidcScope(scope: string, claimScopes: Readonly<Record<string, string[]>> = {}): string {
  const claims = Object.hasOwn(claimScopes, scope) ? claimScopes[scope] : undefined;
  if (claims) return `See your ${claims.join(', ')}`;
  return OIDC_SCOPE_DESCRIPTIONS[scope] ?? scope;
}

/**
 * A claim asked for on its own (the claims parameter, src/oidc/claims-parameter.ts), told as the scope that
 * releases it would be ("See your email address" for `email` or `email_verified`), or by its name.
 */
export function describeClaim(claim: string, userClaims: readonly string[] = [], claimScopes: Readonly<Record<string, string[]>> = {}): string {
  const scope = Object.entries(claimsByScope(userClaims, claimScopes)).find(([name, claims]) => name !== 'openid' && claims?.includes(claim))?.[0];
  return scope ? describeOidcScope(scope, claimScopes) : `See your ${claim}`;
}
