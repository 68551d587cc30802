/**
 * Our RSA keys as oidc-provider sees them: `ExternalSigningKey`s that sign with node's own `crypto.sign`, either
 * in place on the event loop or on libuv's thread pool (SIGNING_THREAD, src/config.ts).
 *
 * Why not the provider's default: given a private JWK, it signs through jose, which uses WebCrypto, which hands
 * every signature to the thread pool and back. When the workers already keep every core busy (WEB_CONCURRENCY
 * equal to the cores, as production runs), the pool adds no parallelism, only the hand-offs between threads.
 * 3,000 RS256 signatures, 16 in flight, on one 2-vCPU machine: 283–299 µs of CPU each through WebCrypto,
 * 265–291 µs through the pool with `crypto.sign`, 239–244 µs signed in place. A single process on a machine with
 * several cores is better served by the pool, where signatures run beside the JavaScript.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';
import type { SigningJwk } from './signing-keys.js';

/** RS256 is RSASSA-PKCS1-v1_5 over SHA-256 (node's default padding for RSA keys). */
const RS256_DIGEST = 'sha256';

export class LocalSigningKey extends ExternalSigningKey {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #onEventLoop: boolean;

  constructor(jwk: SigningJwk, options: { onEventLoop: boolean }) {
    super();
    this.#privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
    this.#publicKey = createPublicKey(this.#privateKey);
    this.#onEventLoop = options.onEventLoop;
    // Through the base class's setters (its type declares only the getters).
    Object.assign(this, { kid: jwk.kid, alg: jwk.alg });
  }

  /** What oidc-provider publishes (kty, n, e) and verifies with: the public half only. */
  override keyObject(): KeyObject {
    return this.#publicKey;
  }

  override sign(data: Uint8Array): Buffer | Promise<Buffer> {
    if (this.#onEventLoop) return sign(RS256_DIGEST, data, this.#privateKey);
    return new Promise((resolve, reject) => {
      sign(RS256_DIGEST, data, this.#privateKey, (error, signature) => (error ? reject(error) : resolve(signature)));
    });
  }
}
