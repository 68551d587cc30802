/**
 * RS256 and ES256 signatures made on the thread that asks for them.
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
import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
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
    // A JWS carries an ECDSA signature as r and s side by side (RFC 7518 §3.4), not DER as Node makes it by default.
    return sign('sha256', data, this.#alg === 'ES256' ? { key: this.#privateKey, dsaEncoding: 'ieee-p1363' } : this.#privateKey);
  }
}
