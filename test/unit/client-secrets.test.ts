/**
 * Client secrets are checked against HMACs; a secret that matched is remembered (as a digest) so that a service
 * presenting it again skips the HMAC, which must never let a secret through that the full check would refuse.
 */
import { generateClientSecret, hashClientSecret, type StoredSecret, verifyClientSecret } from '../../src/clients/secrets.js';

const PEPPERS = [{ kid: 'p1', secret: 'pepper-one-0123456789abcdefghijklmnopq' }];

function stored(secret: string, expiresAt: Date | null = null): StoredSecret {
  return { pepperKid: 'p1', hash: hashClientSecret(secret, PEPPERS[0]!), expiresAt };
}

describe('client secret check', () => {
  test('a matched secret keeps matching, and any other secret is still refused', () => {
    const secret = generateClientSecret();
    const hashes = [stored(secret)];
    expect(verifyClientSecret(secret, hashes, PEPPERS)).toBe(true);
    expect(verifyClientSecret(secret, hashes, PEPPERS)).toBe(true);
    expect(verifyClientSecret(`${secret}x`, hashes, PEPPERS)).toBe(false);
    expect(verifyClientSecret(secret.slice(1), hashes, PEPPERS)).toBe(false);
    expect(verifyClientSecret('', hashes, PEPPERS)).toBe(false);
  });

  test('a remembered match lapses with the secret it matched', () => {
    const secret = generateClientSecret();
    const expiresAt = new Date(Date.now() + 60_000);
    const hashes = [stored(secret, expiresAt), stored(generateClientSecret())];
    expect(verifyClientSecret(secret, hashes, PEPPERS)).toBe(true);
    expect(verifyClientSecret(secret, hashes, PEPPERS, new Date(expiresAt.getTime() - 1))).toBe(true);
    expect(verifyClientSecret(secret, hashes, PEPPERS, expiresAt)).toBe(false);
  });

  test('a secret that matched one client does not match another', () => {
    const secret = generateClientSecret();
    expect(verifyClientSecret(secret, [stored(secret)], PEPPERS)).toBe(true);
    expect(verifyClientSecret(secret, [stored(generateClientSecret())], PEPPERS)).toBe(false);
  });

  test('without the pepper that made a hash, nothing matches it', () => {
    const secret = generateClientSecret();
    expect(verifyClientSecret(secret, [{ ...stored(secret), pepperKid: 'gone' }], PEPPERS)).toBe(false);
  });
});
