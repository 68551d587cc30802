/**
 * CSRF tokens for our interaction forms. The interaction cookie is SameSite=Lax and path-bound, which already
 * stops most cross-site posts; a token bound to the interaction id (HMAC under the cookie-signing secrets) closes
 * the rest. Any current secret verifies, so a secret rotation between render and submit does no harm.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const sign = (secret: string, uid: string) => createHmac('sha256', secret).update(`interaction:${uid}`).digest('base64url');

export function csrfToken(secrets: readonly string[], uid: string): string {
  const secret = secrets[0];
  if (!secret) throw new Error('no cookie secret to sign CSRF tokens with');
  return sign(secret, uid);
}

export function csrfTokenValid(secrets: readonly string[], uid: string, presented: unknown): boolean {
  if (typeof presented !== 'string' || presented.length === 0) return false;
  const given = Buffer.from(presented);
  return secrets.some((secret) => {
    const expected = Buffer.from(sign(secret, uid));
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}
