/** The OpenID Connect scopes we offer (what each releases is in ./accounts.ts). API scopes are per API (src/apis/). */
export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'roles', 'groups'];

/** Ours, and the scopes USER_CLAIMS gives attributes of their own (`hr` of `hr:employee_id`). */
export const offeredOidcScopes = (claimScopes: Readonly<Record<string, string[]>>) => [...OIDC_SCOPES, ...Object.keys(claimScopes)];
