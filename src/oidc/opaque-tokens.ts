/**
 * Refresh tokens are one character longer than every other opaque token (264 bits of randomness against 256:
 * 44 characters against 43), so a lookup can tell them apart without asking a store.
 *
 * Why: introspection and revocation without `token_type_hint` look a token up as an access token, a
 * client-credentials token and a refresh token at once (oidc-provider's findToken). By length, the lookups that
 * cannot succeed, among them a Postgres query for every opaque access token introspected, are answered at once.
 */
import type { Configuration } from 'oidc-provider';

const REFRESH_TOKEN_BITS = 264;
const OTHER_TOKEN_BITS = 256;
/** base64url: 6 bits a character. */
const lengthOf = (bits: number) => Math.ceil(bits / 6);
const REFRESH_TOKEN_LENGTH = lengthOf(REFRESH_TOKEN_BITS);
const OTHER_TOKEN_LENGTH = lengthOf(OTHER_TOKEN_BITS);

/** The provider's `formats.bitsOfOpaqueRandomness`. */
export const bitsOfOpaqueRandomness: NonNullable<NonNullable<Configuration['formats']>['bitsOfOpaqueRandomness']> = (_ctx, token) =>
  token.kind === 'RefreshToken' ? REFRESH_TOKEN_BITS : OTHER_TOKEN_BITS;

/** The models whose ids `mayBeTokenOf` can rule out by length. */
export const LENGTH_TYPED_MODELS: ReadonlySet<string> = new Set(['RefreshToken', 'AccessToken', 'ClientCredentials']);

/**
 * False when `id` has the length of another kind's tokens, so the record cannot be in the model's store. Ids of any
 * other length (from elsewhere, or malformed) are looked up as usual.
 */
export function mayBeTokenOf(model: string, id: string): boolean {
  if (model === 'RefreshToken') return id.length !== OTHER_TOKEN_LENGTH;
  if (model === 'AccessToken' || model === 'ClientCredentials') return id.length !== REFRESH_TOKEN_LENGTH;
  return true;
}
