/**
 * Checks a JWT access token this server issued (RFC 9068: typ at+jwt, our issuer, signed by one of the keys in
 * force, unexpired), offline, as an API would from our JWKS. Used where the server itself is the API: the admin
 * API, and token exchange (a back end handing back the token it was called with).
 */
import { createPublicKey } from 'node:crypto';
import { type JSONWebKeySet, type JWTPayload, createLocalJWKSet, jwtVerify } from 'jose';
import { SIGNING_ALGS, type SigningJwk } from '../keys/signing-keys.js';

export interface JwtAccessTokenOptions {
  issuer: string;
  /** The private keys in force (the key ring's); only their public parts are used. */
  signingKeys: () => SigningJwk[];
}

const PUBLIC_JWK_MEMBERS = ['kty', 'n', 'e', 'crv', 'x', 'y'] as const;

function publicJwks(keys: SigningJwk[]): JSONWebKeySet {
  return {
    keys: keys.map((key) => {
      const exported = createPublicKey({ key, format: 'jwk' }).export({ format: 'jwk' }) as Record<string, unknown>;
      const jwk: Record<string, unknown> = { kid: key.kid, alg: key.alg, use: key.use };
      for (const member of PUBLIC_JWK_MEMBERS) if (exported[member] !== undefined) jwk[member] = exported[member];
      return jwk;
    }),
  };
}

/** A compact JWS: three base64url parts (an opaque token of ours is one part). */
export const looksLikeJwt = (token: string) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);

/**
 * A verifier of our JWT access tokens, for `audience` if given (any otherwise). It throws (jose's errors) for a
 * token that is not one, and rebuilds its key set only when the key ring's keys change.
 */
export function jwtAccessTokenVerifier(options: JwtAccessTokenOptions) {
  let cachedKeys: SigningJwk[] | undefined;
  let jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  const currentJwks = () => {
    const keys = options.signingKeys();
    if (keys !== cachedKeys || !jwks) {
      jwks = createLocalJWKSet(publicJwks(keys));
      cachedKeys = keys;
    }
    return jwks;
  };
  return async (token: string, audience?: string): Promise<JWTPayload> => {
    const { payload } = await jwtVerify(token, currentJwks(), {
      issuer: options.issuer,
      ...(audience ? { audience } : {}),
      typ: 'at+jwt',
      // Each API's tokens are signed with its own algorithm (RS256 unless registered otherwise); the admin API's RS256.
      algorithms: [...SIGNING_ALGS],
      requiredClaims: ['exp', 'iat', 'client_id', 'sub', 'aud'],
    });
    return payload;
  };
}
