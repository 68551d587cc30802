/**
 * The authenticator-app pieces of two-step verification (src/accounts/totp.ts): codes as RFC 6238 computes them,
 * the window of accepted steps, the secret sealed at rest, and the recovery codes.
 */
import {
  codeAt,
  decryptTotpSecret,
  encryptTotpSecret,
  enrollmentOf,
  hashRecoveryCode,
  looksLikeRecoveryCode,
  newRecoveryCodes,
  newTotpSecret,
  stepOfCode,
} from '../../src/accounts/totp.js';

/** RFC 6238 Appendix B's SHA-1 seed, "12345678901234567890", in base32. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const USER = '0f8fad5b-d9cb-469f-a165-70867728950e';
const pepper = { kid: 'p2', secret: 'a'.repeat(43) };
const oldPepper = { kid: 'p1', secret: 'b'.repeat(43) };

describe('codes', () => {
  test('are RFC 6238’s test vectors (the last six of its eight digits)', () => {
    expect(codeAt(RFC_SECRET, 59_000)).toBe('287082');
    expect(codeAt(RFC_SECRET, 1_111_111_109_000)).toBe('081804');
    expect(codeAt(RFC_SECRET, 2_000_000_000_000)).toBe('279037');
  });

  test('are accepted one step either side of now, with the step they were made for, and not further', () => {
    const now = 1_796_000_000_000;
    const step = Math.floor(now / 30_000);
    expect(stepOfCode(RFC_SECRET, codeAt(RFC_SECRET, now), now)).toBe(step);
    expect(stepOfCode(RFC_SECRET, codeAt(RFC_SECRET, now - 30_000), now)).toBe(step - 1);
    expect(stepOfCode(RFC_SECRET, codeAt(RFC_SECRET, now + 30_000), now)).toBe(step + 1);
    expect(stepOfCode(RFC_SECRET, codeAt(RFC_SECRET, now + 60_000), now)).toBeUndefined();
    expect(stepOfCode(RFC_SECRET, codeAt(RFC_SECRET, now - 60_000), now)).toBeUndefined();
  });

  test('may be typed with spaces, but must be six digits', () => {
    const now = Date.now();
    const code = codeAt(RFC_SECRET, now);
    expect(stepOfCode(RFC_SECRET, `${code.slice(0, 3)} ${code.slice(3)}`, now)).toBeDefined();
    expect(stepOfCode(RFC_SECRET, code.slice(1), now)).toBeUndefined();
    expect(stepOfCode(RFC_SECRET, `${code}0`, now)).toBeUndefined();
    expect(stepOfCode(RFC_SECRET, 'abcdef', now)).toBeUndefined();
  });

  test('a new secret is 160 random bits, and the set-up address names the account and issuer for the app', () => {
    const secret = newTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(secret);
    const { uri, qrSvg } = enrollmentOf(secret, 'ada@example.com', 'id.example.com');
    expect(uri).toBe(`otpauth://totp/id.example.com:ada%40example.com?issuer=id.example.com&secret=${secret}&algorithm=SHA1&digits=6&period=30`);
    expect(qrSvg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="[\d ]+">/);
    expect(qrSvg).not.toMatch(/<script|style=|on\w+=/i);
  });
});

describe('the secret at rest', () => {
  test('is sealed under the pepper, names its kid, and opens for the same user only', () => {
    const sealed = encryptTotpSecret(RFC_SECRET, USER, pepper);
    expect(sealed).toMatch(/^v1\.p2\.[\w-]{16}\.[\w-]+$/);
    expect(sealed).not.toContain(RFC_SECRET);
    expect(encryptTotpSecret(RFC_SECRET, USER, pepper)).not.toBe(sealed); // a fresh IV each time
    expect(decryptTotpSecret(sealed, USER, [pepper])).toBe(RFC_SECRET);
    expect(decryptTotpSecret(sealed, '6f1c6f2e-1b9a-4a43-9f73-2a3d4b6c7d8e', [pepper])).toBeUndefined();
  });

  test('opens under an older pepper still listed, and not once it is removed or altered', () => {
    const sealed = encryptTotpSecret(RFC_SECRET, USER, oldPepper);
    expect(decryptTotpSecret(sealed, USER, [pepper, oldPepper])).toBe(RFC_SECRET);
    expect(decryptTotpSecret(sealed, USER, [pepper])).toBeUndefined();
    expect(decryptTotpSecret(sealed, USER, [{ kid: 'p1', secret: 'c'.repeat(43) }])).toBeUndefined();
    const [version, kid, iv, body] = sealed.split('.');
    const flipped = `${body?.startsWith('A') ? 'B' : 'A'}${body?.slice(1)}`;
    expect(decryptTotpSecret([version, kid, iv, flipped].join('.'), USER, [oldPepper])).toBeUndefined();
    expect(decryptTotpSecret('not sealed', USER, [pepper])).toBeUndefined();
  });
});

describe('recovery codes', () => {
  test('are ten different codes of ten unambiguous characters', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[a-hj-km-np-z2-9]{5}-[a-hj-km-np-z2-9]{5}$/);
  });

  test('are told apart from an app’s code, and hash alike however they are typed', () => {
    const [code] = newRecoveryCodes() as [string];
    expect(looksLikeRecoveryCode(code)).toBe(true);
    expect(looksLikeRecoveryCode('123456')).toBe(false);
    const stored = hashRecoveryCode(code, pepper);
    expect(stored).toMatch(/^p2:[\w-]{43}$/);
    expect(hashRecoveryCode(` ${code.toUpperCase().replace('-', ' ')} `, pepper)).toBe(stored);
    expect(hashRecoveryCode(code, oldPepper)).not.toBe(stored.replace('p2:', 'p1:'));
  });
});
