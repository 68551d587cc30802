/**
 * Opaque tokens of the kinds that introspection and revocation look up have lengths of their own: access tokens
 * 43 characters (256 bits of randomness), refresh tokens 44 (264 bits), client-credentials tokens 45 (270 bits),
 * so a lookup can rule a kind out without asking a store.
 *
 * Why: introspection and revocation look a token up as an access token, a client-credentials token and a refresh
 * token at once (oidc-provider's findToken; with `token_type_hint=access_token`, the first two). By length, the
 * lookups that cannot succeed (a Postgres query for every opaque token introspected without a hint, and a Redis
 * read of the other kind) are answered at once.
 */
import type { Configuration } from 'oidc-provider';

const ACCESS_TOKEN_BITS = 256;
const REFRESH_TOKEN_BITS = 264;
const CLIENT_CREDENTIALS_BITS = 270;
/** base64url: 6 bits a character. */
const lengthOf = (bits: number) => Math.ceil(bits / 6);
const ACCESS_TOKEN_LENGTH = lengthOf(ACCESS_TOKEN_BITS);
const REFRESH_TOKEN_LENGTH = lengthOf(REFRESH_TOKEN_BITS);
const CLIENT_CREDENTIALS_LENGTH = lengthOf(CLIENT_CREDENTIALS_BITS);

/** The provider's `formats.bitsOfOpaqueRandomness`. Every kind not named here (codes, sessions…) gets 256 bits. */
export const bitsOfOpaqueRandomness: NonNullable<NonNullable<Configuration['formats']>['bitsOfOpaqueRandomness']> = (_ctx, token) => {
  if (token.kind === 'RefreshToken') return REFRESH_TOKEN_BITS;
  if (token.kind === 'ClientCredentials') return CLIENT_CREDENTIALS_BITS;
  return ACCESS_TOKEN_BITS;
};

/** The models whose ids `mayBeTokenOf` can rule out by length. */
export const LENGTH_TYPED_MODELS: ReadonlySet<string> = new Set(['RefreshToken', 'AccessToken', 'ClientCredentials']);

/**
 * False when `id` has the length of another kind's tokens, so the record cannot be in the model's store. Ids of any
 * other length (from elsewhere, or malformed) are looked up as usual.
 */
export function mayBeTokenOf(model: string, id: string): boolean {
  switch (model) {
    case 'RefreshToken':
      return id.length !== ACCESS_TOKEN_LENGTH && id.length !== CLIENT_CREDENTIALS_LENGTH;
    case 'AccessToken':
      return id.length !== REFRESH_TOKEN_LENGTH && id.length !== CLIENT_CREDENTIALS_LENGTH;
    case 'ClientCredentials':
      // Also 43 characters: the length every client-credentials token had before, which an instance of an older
      // version still issues during a rolling upgrade, and which stay valid for their lifetime.
      return id.length !== REFRESH_TOKEN_LENGTH;
    default:
      return true;
  }
}
