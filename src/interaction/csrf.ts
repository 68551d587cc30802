/**
 * CSRF tokens for our forms. The interaction cookie is SameSite=Lax and path-bound, which already stops most
 * cross-site posts; a token bound to the interaction id (HMAC under the cookie-signing secrets) closes the rest.
 * The account page's forms are bound the same way to the login session's uid, under their own purpose, so that
 * neither kind of token is ever the other. Any current secret verifies, so a secret rotation between render and
 * submit does no harm.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a token is bound to: an interaction (the login and consent pages) or a login session (the account page). */
export type CsrfPurpose = 'interaction' | 'account';

const sign = (secret: string, uid: string, purpose: CsrfPurpose) => createHmac('sha256', secret).update(`${purpose}:${uid}`).digest('base64url');

export function csrfToken(secrets: readonly string[], uid: string, purpose: CsrfPurpose = 'interaction'): string {
  const secret = secrets[0];
  if (!secret) throw new Error('no cookie secret to sign CSRF tokens with');
  return sign(secret, uid, purpose);
}

export function csrfTokenValid(secrets: readonly string[], uid: string, presented: unknown, purpose: CsrfPurpose = 'interaction'): boolean {
  if (typeof presented !== 'string' || presented.length === 0) return false;
  const given = Buffer.from(presented);
  return secrets.some((secret) => {
    const expected = Buffer.from(sign(secret, uid, purpose));
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}
