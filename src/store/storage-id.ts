/**
 * Records are stored under a SHA-256 of their id, never the id itself. oidc-provider's ids are the token values
 * (refresh tokens, opaque access tokens, authorization codes, session cookies), so a dump of the database or of
 * Redis must not hand out live credentials. Lookups hash the id they are given; nothing ever needs the reverse.
 */
import { hash } from 'node:crypto';

/** One-shot `hash`: a refresh computes four of these, and a Hash object per call costs twice as much. */
export function storageId(id: string): string {
  return hash('sha256', id, 'base64url');
}

/**
 * Models whose id is a bearer credential and that are only ever looked up by it. Their payload's `jti` repeats
 * the id, so it is dropped before storing and put back by `find`, which knows the id. (A Session keeps its jti:
 * it is also found by uid, and the cookie value must then come back from the record.)
 */
const CREDENTIAL_MODELS = new Set([
  'AccessToken',
  'RefreshToken',
  'AuthorizationCode',
  'ClientCredentials',
  'InitialAccessToken',
  'RegistrationAccessToken',
  'BackchannelAuthenticationRequest',
]);

export function payloadToStore<T extends { jti?: unknown }>(model: string, id: string, payload: T): T {
  if (!CREDENTIAL_MODELS.has(model) || payload.jti !== id) return payload;
  const { jti: _jti, ...rest } = payload;
  return rest as T;
}

export function payloadFromStore<T extends { jti?: unknown }>(model: string, id: string, payload: T): T {
  return CREDENTIAL_MODELS.has(model) && payload.jti === undefined ? { ...payload, jti: id } : payload;
}
