/**
 * The pieces of two-step verification that need no database: the authenticator app's shared secret (RFC 6238
 * TOTP, SHA-1, 6 digits, 30 s: what every authenticator app reads from a QR code), its encryption at rest, and the
 * recovery codes. ./two-factor.ts keeps them on the users row.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomInt } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { renderSVG } from 'uqr';
import type { Pepper } from '../clients/secrets.js';

const PERIOD_SECONDS = 30;
/** Codes of the step before and after are accepted too: a phone's clock a little off, a code typed at the turn. */
const WINDOW = 1;

const totpOf = (secret: string, label = '', issuer = '') =>
  new TOTP({ issuer, label, secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: PERIOD_SECONDS });

/** 160 random bits in base32, the size RFC 4226 recommends for SHA-1. */
export const newTotpSecret = (): string => new Secret({ size: 20 }).base32;

/** The `otpauth://` address an authenticator app reads, and the same as a QR code (SVG, no script, no style). */
export function enrollmentOf(secret: string, account: string, issuer: string): { uri: string; qrSvg: string } {
  const uri = totpOf(secret, account, issuer).toString();
  // A quiet zone of four modules, as the QR standard asks: the page around it may be dark.
  return { uri, qrSvg: renderSVG(uri, { border: 4 }) };
}

/** The 30-second step `code` was made for, or undefined when it matches none near `now`. */
export function stepOfCode(secret: string, code: string, now = Date.now()): number | undefined {
  const digits = code.replace(/\s/g, '');
  if (!/^\d{6}$/.test(digits)) return undefined;
  const delta = totpOf(secret).validate({ token: digits, timestamp: now, window: WINDOW });
  return delta === null ? undefined : Math.floor(now / 1000 / PERIOD_SECONDS) + delta;
}

/** The code for a moment (tests, and the self-test of an enrollment). */
export const codeAt = (secret: string, timestamp: number): string => totpOf(secret).generate({ timestamp });

/**
 * The secret at rest: AES-256-GCM under a key derived from a client-secret pepper (HKDF, so the pepper itself is
 * never used as this key), bound to the user's id so that a secret copied to another row does not decrypt.
 * Written as `v1.<pepper kid>.<iv>.<ciphertext+tag>`; the kid lets the pepper rotate as it does for client secrets.
 */
const keyOf = (pepper: Pepper) => Buffer.from(hkdfSync('sha256', pepper.secret, '', 'authz totp secret v1', 32));

export function encryptTotpSecret(secret: string, userId: string, pepper: Pepper): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(pepper), iv).setAAD(Buffer.from(userId));
  const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return ['v1', pepper.kid, iv.toString('base64url'), sealed.toString('base64url')].join('.');
}

/** The kid of the pepper a secret is sealed under. */
export const sealingPepperOf = (sealed: string): string | undefined => sealed.split('.')[1];

/** The secret, or undefined when it cannot be read: its pepper is gone, or it was not written for this user. */
export function decryptTotpSecret(stored: string, userId: string, peppers: readonly Pepper[]): string | undefined {
  const [version, kid, iv, sealed] = stored.split('.');
  const pepper = peppers.find((candidate) => candidate.kid === kid);
  if (version !== 'v1' || !pepper || !iv || !sealed) return undefined;
  const bytes = Buffer.from(sealed, 'base64url');
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(pepper), Buffer.from(iv, 'base64url')).setAAD(Buffer.from(userId));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Letters and digits that cannot be mistaken for one another when copied by hand (no 0/o, 1/l/i). */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const RECOVERY_CODE_COUNT = 10;

/** Ten codes of ten characters (about 49 bits each), shown as `xxxxx-xxxxx`. */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const chars = Array.from({ length: 10 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

/** What a person may type for a recovery code: any case, with or without the dash and spaces. */
export const looksLikeRecoveryCode = (typed: string): boolean => /^[a-z0-9]{10}$/.test(normalizeRecoveryCode(typed));

const normalizeRecoveryCode = (typed: string) => typed.toLowerCase().replace(/[\s-]/g, '');

/**
 * Recovery codes are stored as HMAC-SHA-256 under a pepper, `kid:hash`: ~49 random bits are too few for a plain
 * hash to resist guessing from a stolen table, and too many for anyone to type wrongly on purpose.
 */
export function hashRecoveryCode(typed: string, pepper: Pepper): string {
  return `${pepper.kid}:${createHmac('sha256', pepper.secret).update(normalizeRecoveryCode(typed)).digest('base64url')}`;
}
