/**
 * DPoP nonces (RFC 9449 §8 at the token endpoint and PAR, §9 at userinfo): the server hands out a nonce in the
 * `DPoP-Nonce` header and a client puts it in its next proofs, so that a proof made ahead of time cannot be used
 * later. oidc-provider derives each nonce from a key and the current minute, so any instance checks what another
 * handed out as long as they share the key: it is made once with the database (migration 0020).
 *
 * With a key, nonces are offered to every DPoP client and taken when sent; a proof without one is still accepted
 * while its `iat` is within five minutes. With DPOP_NONCE_REQUIRED every proof must carry a current nonce: one
 * without gets `use_dpop_nonce` and a fresh nonce, which openid-client (and any RFC 9449 client) retries with.
 */
import type { Configuration } from 'oidc-provider';
import type { Database } from '../store/database.js';
import { readServerSetting } from '../store/server-settings.js';

/** The 32-byte key the migration made. */
export async function readDpopNonceSecret(db: Database): Promise<Buffer> {
  return Buffer.from(await readServerSetting(db, 'dpop_nonce_secret'), 'base64url');
}

type DpopFeature = NonNullable<NonNullable<Configuration['features']>['dPoP']>;

export function dpopFeature(nonceSecret: Buffer, nonceRequired: boolean): DpopFeature {
  return { enabled: true, nonceSecret, requireNonce: () => nonceRequired };
}
