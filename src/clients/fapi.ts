/**
 * The FAPI 2.0 Security Profile for one client (`fapi2`, as Keycloak's "fapi-2-security-profile" client profile),
 * for open banking and other APIs that must resist a stolen code or token. What the client registers must fit
 * it, and is refused here, naming the field, when it does not:
 *
 * - a confidential web app (FAPI 2.0 takes confidential clients only);
 * - authenticating with private_key_jwt or mutual TLS, never a shared secret;
 * - with sender-constrained tokens, DPoP or certificate-bound;
 * - signing ES256 (FAPI 2.0 allows PS256, ES256 or EdDSA, not RS256; ES256 is the one of them our keys sign);
 * - redirected back over https only.
 *
 * What the server does for such a client follows from the profile (src/oidc/provider.ts): its authorization
 * requests must be pushed (PAR) and use PKCE S256, name their redirect_uri, and a
 * request object needs exp and nbf at most an hour apart (oidc-provider's `fapi` feature), its private_key_jwt
 * assertions must be for the issuer and signed PS256, ES256 or EdDSA; its refresh tokens do
 * not rotate (the profile asks for none: they are bound to the client, and rotation only adds a way to lose the grant).
 */
import type { ClientType } from './clients.js';

/** Our metadata key (oidc-provider's extraClientMetadata), read where a profile is asked for. */
export const FAPI_PROFILE_METADATA = 'fapi_profile';
export const FAPI_2_0 = '2.0';

/** The FAPI 2.0 Security Profile's algorithms (§5.4): what its clients' assertions and what we sign for them use. */
export const FAPI2_ASSERTION_ALGS: readonly string[] = ['PS256', 'ES256', 'EdDSA'];

export const FAPI2_DESCRIPTION =
  'the FAPI 2.0 Security Profile: a web client with private_key_jwt or mutual TLS, DPoP or certificate-bound tokens and signingAlg PS256, ES256 or EdDSA; its authorization requests must then be pushed (PAR) with PKCE, and its refresh tokens do not rotate';

const STRONG_AUTH_METHODS = ['private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth'];

/** What a FAPI 2.0 client's registration must say; each problem is a sentence about one setting. */
export interface Fapi2Settings {
  type: ClientType;
  tokenEndpointAuthMethod?: string;
  requireDpop: boolean;
  certificateBoundTokens: boolean;
  signingAlg: string;
  redirectUris: readonly string[];
}

/** Why these settings do not fit the FAPI 2.0 Security Profile; empty when they do. */
export function fapi2Problems(client: Fapi2Settings): string[] {
  const problems: string[] = [];
  if (client.type !== 'web') problems.push(`FAPI 2.0 is for web clients (confidential, authorization code flow), not ${client.type} clients`);
  const method = client.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (!STRONG_AUTH_METHODS.includes(method)) {
    problems.push(`a FAPI 2.0 client authenticates with private_key_jwt, tls_client_auth or self_signed_tls_client_auth, not ${method}`);
  }
  if (!client.requireDpop && !client.certificateBoundTokens) problems.push('a FAPI 2.0 client’s tokens are sender-constrained: set requireDpop or certificateBoundTokens');
  if (!FAPI2_ASSERTION_ALGS.includes(client.signingAlg)) {
    problems.push(`FAPI 2.0 allows PS256, ES256 or EdDSA signatures, not ${client.signingAlg}: set signingAlg PS256, ES256 or EdDSA`);
  }
  const plain = client.redirectUris.find((uri) => !uri.startsWith('https://'));
  if (plain) problems.push(`a FAPI 2.0 client is sent back over https only, not to ${plain}`);
  return problems;
}
