/**
 * Signing key files in the keys/ folder: one PEM private key (PKCS#8, optionally encrypted with KEYS_PASSPHRASE,
 * or PKCS#1 / SEC 1) per key, named `<kid>.pem`. The kid starts with the key's activation time (see key-states.ts).
 * An RSA key signs RS256, which every server has (OpenID Connect's default for ID tokens, and what access tokens
 * use). For the clients that ask for another algorithm: an RSA key whose name ends in `-ps256` signs PS256 (one
 * key, one algorithm, as RFC 7517 §4.4 and Keycloak's per-algorithm key providers have it), an EC P-256 key
 * ES256, an Ed25519 key EdDSA. Every problem names the file at fault.
 */
import { createHash, createPrivateKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { activationFromKid, kidForActivation } from './key-states.js';

/** The algorithms keys/ may hold keys for: RS256 (RSA), always; PS256 (RSA), ES256 (EC P-256), EdDSA (Ed25519), where added. */
export const SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];
/** "RS256, PS256, ES256 or EdDSA", for messages. */
export const SIGNING_ALGS_IN_WORDS = `${SIGNING_ALGS.slice(0, -1).join(', ')} or ${SIGNING_ALGS.at(-1)}`;

/** The algorithm every server signs with: access tokens and, unless a client asks for another, what it is sent. */
export const SIGNING_ALG = 'RS256';

export interface SigningJwk extends JsonWebKey {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
}

export interface KeyFile {
  kid: string;
  alg: SigningAlg;
  file: string;
  activatesAt: Date;
  jwk: SigningJwk;
}

export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

export const MIN_RSA_BITS = 2048;
const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** A name with no activation time counts as active since forever: older than any dated key. */
const SINCE_FOREVER = new Date(0);

function decrypt(file: string, pem: string, passphrase: string | undefined): KeyObject {
  const encrypted = pem.includes('ENCRYPTED');
  if (encrypted && !passphrase) throw new KeyFileError(`${file}: is encrypted; set KEYS_PASSPHRASE`);
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase: encrypted ? passphrase : undefined });
  } catch {
    throw new KeyFileError(
      encrypted ? `${file}: cannot be decrypted with KEYS_PASSPHRASE (wrong passphrase?)` : `${file}: is not a PEM private key`,
    );
  }
}

function toKeyFile(file: string, key: KeyObject): KeyFile {
  const kid = path.basename(file, '.pem');
  if (!KID_PATTERN.test(kid)) throw new KeyFileError(`${file}: the file name (the kid) may only use A-Z a-z 0-9 . _ -`);
  const alg = algorithmOf(file, kid, key);
  const jwk: SigningJwk = { ...key.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return { kid, alg, file, activatesAt: activationFromKid(kid) ?? SINCE_FOREVER, jwk };
}

/** The kid suffix that makes an RSA key sign PS256 rather than RS256. */
const PS256_SUFFIX = '-ps256';

/** What a key signs with, by its type (and, for RSA, its name); other types, curves and short RSA keys are refused. */
function algorithmOf(file: string, kid: string, key: KeyObject): SigningAlg {
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new KeyFileError(`${file}: RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
    return kid.toLowerCase().endsWith(PS256_SUFFIX) ? 'PS256' : 'RS256';
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'rsa-pss') {
    throw new KeyFileError(`${file}: is an RSA-PSS (RSASSA-PSS) key, which has no JWK form; write it as a plain RSA key named <stamp>${PS256_SUFFIX}.pem to sign PS256`);
  }
  const kind = key.asymmetricKeyType === 'ec' ? `EC ${key.asymmetricKeyDetails?.namedCurve}` : key.asymmetricKeyType;
  throw new KeyFileError(`${file}: is a ${kind} key; RSA (RS256, or PS256 when named *${PS256_SUFFIX}.pem), EC P-256 (ES256) and Ed25519 (EdDSA) keys are supported`);
}

async function readKeyFile(file: string, passphrase: string | undefined): Promise<KeyFile> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new KeyFileError(`${file}: cannot be read (${(error as NodeJS.ErrnoException).code})`);
  }
  return toKeyFile(file, decrypt(file, pem, passphrase));
}

/** The same key material under two names would make two kids verify one key: refuse it. */
function refuseDuplicates(keys: KeyFile[]): void {
  const seen = new Map<string, string>();
  for (const key of keys) {
    const fingerprint = createHash('sha256').update(JSON.stringify([key.jwk.n, key.jwk.x, key.jwk.y])).digest('base64url');
    const other = seen.get(fingerprint);
    if (other) throw new KeyFileError(`${key.file}: holds the same key as ${other}; remove one of them`);
    seen.set(fingerprint, key.file);
  }
}

/** Every key file in the folder (in no particular order). Throws KeyFileError naming the file at fault. */
export async function readKeyFiles(keysDir: string, passphrase?: string): Promise<KeyFile[]> {
  let names: string[];
  try {
    names = await readdir(keysDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new KeyFileError(`${keysDir}: cannot be read (${(error as NodeJS.ErrnoException).code})`);
  }
  const files = names.filter((name) => name.endsWith('.pem')).map((name) => path.join(keysDir, name));
  const keys = await Promise.all(files.map((file) => readKeyFile(file, passphrase)));
  refuseDuplicates(keys);
  return keys;
}

/** Where keys/ is, for the repositories that check a client's or an API's algorithm against it. */
export interface KeysLocation {
  dir: string;
  passphrase?: string;
}

/**
 * Why `alg` cannot be chosen for `what` (a client, an API) while keys/ holds no key for it, or undefined when it
 * can. RS256 always can: keys/ must hold an RS256 key (key-ring.ts).
 */
export async function missingKeyProblem(alg: SigningAlg, keys: KeysLocation, what: string): Promise<string | undefined> {
  if (alg === SIGNING_ALG) return undefined;
  const files = await readKeyFiles(keys.dir, keys.passphrase);
  if (files.some((file) => file.alg === alg)) return undefined;
  return `this server has no ${alg} key: add one with \`authz keys rotate --alg ${alg} --activate-in 0\`, then register the ${what}`;
}

export interface NewKeyOptions {
  activatesAt: Date;
  passphrase?: string;
  /** RS256 (a 2048-bit RSA key; the default), PS256 (the same, named for PS256), ES256 (EC P-256) or EdDSA (Ed25519). */
  alg?: SigningAlg;
}

/**
 * A key of another algorithm than RS256 says so after its activation time, so that it never takes an RS256 key's
 * name (and, for PS256, because the name is what makes an RSA key sign PS256).
 */
const kidFor = (activatesAt: Date, alg: SigningAlg) => `${kidForActivation(activatesAt)}${alg === 'RS256' ? '' : `-${alg.toLowerCase()}`}`;

function generatePrivateKey(alg: SigningAlg): KeyObject {
  switch (alg) {
    case 'ES256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'EdDSA':
      return generateKeyPairSync('ed25519').privateKey;
    default:
      return generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS }).privateKey;
  }
}

/**
 * Writes a new key that activates at the given time. Creation is exclusive: when another instance already made
 * the key for that moment, nothing is written and `created` is false.
 */
export async function writeNewKey(keysDir: string, options: NewKeyOptions): Promise<{ kid: string; created: boolean }> {
  await mkdir(keysDir, { recursive: true });
  const alg = options.alg ?? 'RS256';
  const kid = kidFor(options.activatesAt, alg);
  const privateKey = generatePrivateKey(alg);
  const pem = options.passphrase
    ? privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: options.passphrase })
    : privateKey.export({ type: 'pkcs8', format: 'pem' });
  try {
    await writeFile(path.join(keysDir, `${kid}.pem`), pem, { mode: 0o600, flag: 'wx' });
    return { kid, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return { kid, created: false };
    throw error;
  }
}
