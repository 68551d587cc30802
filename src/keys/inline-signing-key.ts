/**
 * RS256, PS256, ES256 and EdDSA signatures made on the thread that asks for them.
 *
 * oidc-provider signs through jose and WebCrypto, which hands each signature to libuv's thread pool and wakes
 * the event loop again when it is done. When every core already runs a worker's event loop, the pool adds no
 * parallelism, only two thread hand-offs per signature: on the 2-vCPU benchmark machine, client credentials →
 * JWT cost less CPU per request signed in line in seven of eight alternated pairs of runs, about 10 % less at the
 * median (bench/FINDINGS.md). With spare cores (fewer workers than cores) the pool lets one event loop use them, so it
 * stays the choice there (config.ts).
 *
 * oidc-provider takes such a key through `features.externalSigningSupport` (meant for KMS and HSM keys): it
 * publishes the public half and calls `sign(data)` with the JWS signing input.
 */
import { constants, createPrivateKey, createPublicKey, type KeyObject, type SignKeyObjectInput, sign } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';
import type { SigningJwk } from './signing-keys.js';

/** The version of oidc-provider's experimental API this class is written against (pinned with `~` in package.json). */
export const EXTERNAL_SIGNING_ACK = 'experimental-01';

export class InlineSigningKey extends ExternalSigningKey {
  readonly #kid: string;
  readonly #alg: SigningJwk['alg'];
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;

  constructor(jwk: SigningJwk) {
    super();
    this.#kid = jwk.kid;
    this.#alg = jwk.alg;
    this.#privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
    this.#publicKey = createPublicKey(this.#privateKey);
  }

  override get kid(): string {
    return this.#kid;
  }

  override get alg(): string {
    return this.#alg;
  }

  /** What oidc-provider verifies its own tokens with (an id_token_hint) and publishes in the JWKS. */
  override keyObject(): KeyObject {
    return this.#publicKey;
  }

  override sign(data: Uint8Array): Buffer {
    // Ed25519 hashes internally: Node takes no digest name for it.
    if (this.#alg === 'EdDSA') return sign(null, data, this.#privateKey);
    return sign('sha256', data, signingInput(this.#alg, this.#privateKey));
  }
}

function signingInput(alg: SigningJwk['alg'], key: KeyObject): KeyObject | SignKeyObjectInput {
  switch (alg) {
    // A JWS carries an ECDSA signature as r and s side by side (RFC 7518 §3.4), not DER as Node makes it by default.
    case 'ES256':
      return { key, dsaEncoding: 'ieee-p1363' };
    // RFC 7518 §3.5: MGF1 with SHA-256 and a salt as long as the hash.
    case 'PS256':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    default:
      return key;
  }
}
