/** The OpenID Connect scopes we offer (what each releases is in ./accounts.ts). API scopes are per API (src/apis/). */
export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'roles'];
