/** What the consent page tells a person each scope lets the application do. */
const OIDC_SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Know who you are (your account identifier)',
  profile: 'See your name and profile',
  email: 'See your email address',
  roles: 'See the roles you hold',
  offline_access: 'Stay connected when you are not using it',
};

export function describeOidcScope(scope: string): string {
  return OIDC_SCOPE_DESCRIPTIONS[scope] ?? scope;
}
