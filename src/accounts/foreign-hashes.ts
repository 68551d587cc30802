/**
 * Password hashes made by another identity provider, kept after an import (./user-import.ts) until their owner
 * next signs in, when the password they typed is hashed again with bcrypt. Two families, in the PHC string
 * format every such system can be converted to:
 *
 *   $pbkdf2-sha256$i=27500$<salt>$<hash>            PBKDF2 (`pbkdf2` is HMAC-SHA-1; also -sha512): Keycloak before 25
 *   $argon2id$v=19$m=7168,t=5,p=1$<salt>$<hash>     Argon2 (also argon2i, argon2d): Keycloak 25 on, Ory Kratos
 *
 * Salt and hash in base64, padded or not. The password is taken as UTF-8, as Java's PBEKeySpec and Keycloak do.
 * Bounds on the parameters keep one sign-in's work bounded whatever a file said.
 */
import { argon2, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);
const argon2Async = promisify(argon2);

const BASE64 = '[A-Za-z0-9+/]+={0,2}';
const PBKDF2 = new RegExp(`^\\$pbkdf2(-sha256|-sha512)?\\$i=(\\d{1,8})\\$(${BASE64})\\$(${BASE64})$`);
const ARGON2 = new RegExp(`^\\$(argon2id|argon2i|argon2d)\\$v=19\\$m=(\\d{1,8}),t=(\\d{1,3}),p=(\\d{1,2})\\$(${BASE64})\\$(${BASE64})$`);

const LIMITS = {
  pbkdf2Iterations: 10_000_000,
  /**
   * KiB: 64 MiB. Keycloak's default is 7 MiB and OWASP's suggestions reach 46 MiB; every attempt at such an account
   * (wrong passwords included, within the sign-in limits) takes this much for the moment it runs.
   */
  argon2Memory: 65_536,
  argon2Passes: 100,
  argon2Parallelism: 16,
  saltBytes: [8, 64],
  hashBytes: [16, 128],
} as const;

type ForeignHash =
  | { kind: 'pbkdf2'; digest: 'sha1' | 'sha256' | 'sha512'; iterations: number; salt: Buffer; hash: Buffer }
  | { kind: 'argon2'; variant: 'argon2id' | 'argon2i' | 'argon2d'; memory: number; passes: number; parallelism: number; salt: Buffer; hash: Buffer };

/** The hash's parameters, or why it cannot be used (a sentence for the operator importing it). */
export function parseForeignHash(text: string): ForeignHash | string {
  const parsed = parsePbkdf2(text) ?? parseArgon2(text);
  if (!parsed) return 'not a bcrypt hash, nor a PBKDF2 or Argon2 (v=19) hash in PHC form ($pbkdf2-sha256$i=…$salt$hash, $argon2id$v=19$m=…,t=…,p=…$salt$hash)';
  return boundsProblem(parsed) ?? parsed;
}

export function isForeignHash(text: string): boolean {
  return text.startsWith('$pbkdf2') || text.startsWith('$argon2');
}

/** Whether `password` is the one hashed; false for a hash that cannot be read (nobody could sign in with it). */
export async function verifyForeignHash(password: string, text: string): Promise<boolean> {
  const parsed = parseForeignHash(text);
  if (typeof parsed === 'string') return false;
  const derived = await derive(password, parsed);
  return derived.length === parsed.hash.length && timingSafeEqual(derived, parsed.hash);
}

function derive(password: string, hash: ForeignHash): Promise<Buffer> {
  if (hash.kind === 'pbkdf2') return pbkdf2Async(Buffer.from(password, 'utf8'), hash.salt, hash.iterations, hash.hash.length, hash.digest);
  return argon2Async(hash.variant, {
    message: Buffer.from(password, 'utf8'),
    nonce: hash.salt,
    memory: hash.memory,
    passes: hash.passes,
    parallelism: hash.parallelism,
    tagLength: hash.hash.length,
  });
}

function parsePbkdf2(text: string): ForeignHash | undefined {
  const match = PBKDF2.exec(text);
  if (!match) return undefined;
  const [, digest, iterations, salt, hash] = match;
  return {
    kind: 'pbkdf2',
    digest: digest === '-sha256' ? 'sha256' : digest === '-sha512' ? 'sha512' : 'sha1',
    iterations: Number(iterations),
    salt: Buffer.from(salt ?? '', 'base64'),
    hash: Buffer.from(hash ?? '', 'base64'),
  };
}

function parseArgon2(text: string): ForeignHash | undefined {
  const match = ARGON2.exec(text);
  if (!match) return undefined;
  const [, variant, memory, passes, parallelism, salt, hash] = match;
  return {
    kind: 'argon2',
    variant: variant as 'argon2id' | 'argon2i' | 'argon2d',
    memory: Number(memory),
    passes: Number(passes),
    parallelism: Number(parallelism),
    salt: Buffer.from(salt ?? '', 'base64'),
    hash: Buffer.from(hash ?? '', 'base64'),
  };
}

function boundsProblem(hash: ForeignHash): string | undefined {
  const [minSalt, maxSalt] = LIMITS.saltBytes;
  const [minHash, maxHash] = LIMITS.hashBytes;
  if (hash.salt.length < minSalt || hash.salt.length > maxSalt) return `its salt must be ${minSalt} to ${maxSalt} bytes`;
  if (hash.hash.length < minHash || hash.hash.length > maxHash) return `its hash must be ${minHash} to ${maxHash} bytes`;
  if (hash.kind === 'pbkdf2') {
    return hash.iterations >= 1 && hash.iterations <= LIMITS.pbkdf2Iterations ? undefined : `its iterations must be 1 to ${LIMITS.pbkdf2Iterations}`;
  }
  if (hash.memory < 8 * hash.parallelism || hash.memory > LIMITS.argon2Memory) return `its memory (m) must be 8×p to ${LIMITS.argon2Memory} KiB`;
  if (hash.passes < 1 || hash.passes > LIMITS.argon2Passes) return `its passes (t) must be 1 to ${LIMITS.argon2Passes}`;
  if (hash.parallelism < 1 || hash.parallelism > LIMITS.argon2Parallelism) return `its parallelism (p) must be 1 to ${LIMITS.argon2Parallelism}`;
  return undefined;
}

/** A PHC string from its parts, as the Keycloak import builds them (base64 without padding, PHC's form). */
export function pbkdf2Phc(digest: 'sha1' | 'sha256' | 'sha512', iterations: number, salt: Buffer, hash: Buffer): string {
  return `$pbkdf2${digest === 'sha1' ? '' : `-${digest}`}$i=${iterations}$${unpadded(salt)}$${unpadded(hash)}`;
}

export function argon2Phc(variant: string, memory: number, passes: number, parallelism: number, salt: Buffer, hash: Buffer): string {
  return `$${variant}$v=19$m=${memory},t=${passes},p=${parallelism}$${unpadded(salt)}$${unpadded(hash)}`;
}

const unpadded = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');
