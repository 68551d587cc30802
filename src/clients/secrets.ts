/**
 * Client secrets: 256 random bits, shown to the operator once, stored only as HMAC-SHA-256 under a server-side
 * pepper. A keyed hash of a high-entropy secret is as safe as a slow KDF and costs microseconds, so the token
 * endpoint stays fast (design §5). The pepper's id is stored beside each hash, so peppers can be rotated.
 */
import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface Pepper {
  kid: string;
  secret: string;
}

export interface StoredSecret {
  pepperKid: string;
  hash: string;
  expiresAt: Date | null;
}

/** 32 random bytes, base64url: 43 characters, 256 bits. */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashClientSecret(secret: string, pepper: Pepper): string {
  return createHmac('sha256', pepper.secret).update(secret, 'utf8').digest('base64url');
}

/**
 * The secret that last matched each client's stored hashes, as its SHA-256 (never the secret itself), and when
 * that match lapses. A service presents the same secret on every request, and one HMAC (a fresh OpenSSL context
 * per call) was the largest item of ours in a profile of the token endpoint: about 17 µs of 800. Keyed by the
 * record's array of hashes, so a changed client (a new record) starts again with the full check.
 */
const lastMatch = new WeakMap<readonly StoredSecret[], { digest: Buffer; until: number }>();

/** True when `presented` matches one of the unexpired stored hashes under the pepper that made it. */
export function verifyClientSecret(presented: string, stored: readonly StoredSecret[], peppers: readonly Pepper[], now = new Date()): boolean {
  // Hex, then decoded: Node's one-shot hash takes 2.4 µs to hand back a Buffer and 0.5 µs a string (Node 24).
  const digest = Buffer.from(hash('sha256', presented, 'hex'), 'hex');
  const known = lastMatch.get(stored);
  if (known && known.until > now.getTime() && timingSafeEqual(known.digest, digest)) return true;
  const matched = matchingHash(presented, stored, peppers, now);
  if (matched) lastMatch.set(stored, { digest, until: matched.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY });
  return matched !== undefined;
}

function matchingHash(presented: string, stored: readonly StoredSecret[], peppers: readonly Pepper[], now: Date): StoredSecret | undefined {
  let matched: StoredSecret | undefined;
  for (const candidate of stored) {
    if (candidate.expiresAt && candidate.expiresAt <= now) continue;
    const pepper = peppers.find((p) => p.kid === candidate.pepperKid);
    if (!pepper) continue;
    const expected = Buffer.from(candidate.hash, 'base64url');
    const actual = Buffer.from(hashClientSecret(presented, pepper), 'base64url');
    // No early exit: every candidate is compared, so timing does not reveal which one matched.
    if (expected.length === actual.length && timingSafeEqual(expected, actual)) matched = candidate;
  }
  return matched;
}
