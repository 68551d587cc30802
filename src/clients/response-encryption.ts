/**
 * Encrypted responses for one client (OpenID Connect Core §10.2; Keycloak's "ID token encryption" settings): its ID
 * tokens, its JARM responses, its JWT introspection answers and (with signedUserinfo) its userinfo are signed as
 * usual, then encrypted to a key of the client's own (JWE, nested: `cty` JWT), so that nothing passing through the
 * browser, a proxy or a log can read the claims. One key-management algorithm and one content encryption for all
 * four, as one signing algorithm signs them all (`signingAlg`).
 *
 * Only public-key algorithms: the client's secret is kept as an HMAC (./secrets.ts), so it can be no key. RSA1_5
 * is left out (RFC 8725 §3.2: padding-oracle attacks), and so are curves openid-client does not take.
 */
import { z } from 'zod';

export const ENCRYPTION_ALGS = ['RSA-OAEP-256', 'RSA-OAEP', 'ECDH-ES', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW'] as const;
export const ENCRYPTION_ENCS = ['A128CBC-HS256', 'A192CBC-HS384', 'A256CBC-HS512', 'A128GCM', 'A192GCM', 'A256GCM'] as const;
/** What OpenID Connect Dynamic Client Registration §2 makes `*_encrypted_response_enc` when only the alg is given. */
export const DEFAULT_ENC = 'A128CBC-HS256';

export interface ResponseEncryption {
  alg: (typeof ENCRYPTION_ALGS)[number];
  enc: (typeof ENCRYPTION_ENCS)[number];
}

export const RESPONSE_ENCRYPTION_DESCRIPTION =
  'encrypt its ID tokens, JARM responses, JWT introspection answers and signed userinfo to its own key (JWE): alg, one of RSA-OAEP-256, RSA-OAEP or ECDH-ES(+A128KW/A192KW/A256KW), and enc (A128CBC-HS256 unless set); needs jwks or jwksUri with a key for it';

export const responseEncryptionSchema = z
  .strictObject({
    alg: z.enum(ENCRYPTION_ALGS, { error: `alg must be ${ENCRYPTION_ALGS.join(', ')}` }),
    enc: z.enum(ENCRYPTION_ENCS, { error: `enc must be ${ENCRYPTION_ENCS.join(', ')}` }).default(DEFAULT_ENC),
  })
  .meta({ description: RESPONSE_ENCRYPTION_DESCRIPTION });

/** Where each response names its encryption in a client's metadata (as oidc-provider reads it), userinfo last. */
export const ENCRYPTED_RESPONSES = ['id_token', 'authorization', 'introspection', 'userinfo'] as const;

/** A JWK of the client's that can take `alg`: its type fits, and it is not restricted to signing or to another alg. */
function fits(key: Record<string, unknown>, alg: ResponseEncryption['alg']): boolean {
  if (key.use !== undefined && key.use !== 'enc') return false;
  if (key.alg !== undefined && key.alg !== alg) return false;
  if (alg.startsWith('RSA')) return key.kty === 'RSA';
  return (key.kty === 'EC' && key.crv === 'P-256') || (key.kty === 'OKP' && key.crv === 'X25519');
}

/**
 * Why `encryption` cannot be used with these keys, or undefined. Keys behind a jwks_uri are fetched when a response
 * is encrypted; one with no fitting key is then `invalid_client_metadata` naming the algorithm.
 */
export function responseEncryptionProblem(encryption: ResponseEncryption, keys: { jwks?: unknown; jwksUri?: unknown }): string | undefined {
  if (keys.jwksUri !== undefined) return undefined;
  const set = keys.jwks as { keys?: Record<string, unknown>[] } | undefined;
  if (!set?.keys) return 'responses are encrypted to the client’s own public key: register its keys (a JWK Set or its URL) too';
  if (set.keys.some((key) => fits(key, encryption.alg))) return undefined;
  const wanted = encryption.alg.startsWith('RSA') ? 'an RSA key' : 'an EC P-256 or X25519 key';
  return `${encryption.alg} needs ${wanted} in jwks with use "enc" (or none) and no other alg`;
}

/** `encryption` under the spec's names, for the responses it applies to (userinfo only when signed). */
export function encryptionMetadata(encryption: ResponseEncryption | null, signedUserinfo: boolean): Record<string, string> {
  if (!encryption) return {};
  const metadata: Record<string, string> = {};
  for (const response of ENCRYPTED_RESPONSES) {
    if (response === 'userinfo' && !signedUserinfo) continue;
    metadata[`${response}_encrypted_response_alg`] = encryption.alg;
    metadata[`${response}_encrypted_response_enc`] = encryption.enc;
  }
  return metadata;
}

/** The names encryptionMetadata writes, for whoever takes them back out of stored metadata. */
export const ENCRYPTION_METADATA_NAMES: readonly string[] = ENCRYPTED_RESPONSES.flatMap((response) => [`${response}_encrypted_response_alg`, `${response}_encrypted_response_enc`]);

/** The encryption stored metadata names (the ID token's is always there when any is), or null. */
export function encryptionOf(metadata: Record<string, unknown>): ResponseEncryption | null {
  const alg = ENCRYPTION_ALGS.find((candidate) => candidate === metadata.id_token_encrypted_response_alg);
  if (!alg) return null;
  return { alg, enc: ENCRYPTION_ENCS.find((candidate) => candidate === metadata.id_token_encrypted_response_enc) ?? DEFAULT_ENC };
}
