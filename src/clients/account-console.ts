/**
 * The account page's own client (src/self-service/): people sign in to /account as to any app, through /auth, so
 * that every rule of a sign-in applies there too (locks, two-step verification, SESSION_MAX_TTL). Like Keycloak's
 * `account-console`, it is built in: not a row of the clients table, never listed, edited or removed, and its id
 * is refused to anyone registering a client. A public client (PKCE) that is first-party (no consent page), may
 * ask only for `openid`, and redirects only to this server's own /account/callback.
 */
import type { ClientRecord } from './clients.js';

export const ACCOUNT_CONSOLE_CLIENT_ID = 'account-console';

/** Its name, as the sessions list and the audit log's readers see it. */
export const ACCOUNT_CONSOLE_NAME = 'Your account';

export const accountConsoleRedirectUri = (issuer: string) => new URL('/account/callback', issuer).href;
export const accountPageUri = (issuer: string) => new URL('/account', issuer).href;

export function accountConsoleClient(issuer: string): ClientRecord {
  const since = new Date(0);
  return {
    clientId: ACCOUNT_CONSOLE_CLIENT_ID,
    name: ACCOUNT_CONSOLE_NAME,
    type: 'spa',
    redirectUris: [accountConsoleRedirectUri(issuer)],
    postLogoutRedirectUris: [accountPageUri(issuer)],
    grantTypes: ['authorization_code'],
    tokenEndpointAuthMethod: 'none',
    scope: 'openid',
    roles: [],
    firstParty: true,
    metadata: {},
    backchannelLogoutUri: null,
    backchannelLogoutSessionRequired: false,
    requireDpop: false,
    certificateBoundTokens: false,
    requirePar: false,
    requireSignedRequestObject: false,
    clientUri: null,
    policyUri: null,
    tosUri: null,
    requireMfa: false,
    signedUserinfo: false,
    signingAlg: 'RS256',
    responseEncryption: null,
    fapi2: false,
    tokenExchangeFrom: [],
    // Its `sub` is the account id, which the account page reads.
    subjectType: 'public',
    sectorIdentifierUri: null,
    pairwiseSector: null,
    disabledAt: null,
    createdAt: since,
    updatedAt: since,
    secrets: [],
  };
}
