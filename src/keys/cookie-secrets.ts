/**
 * Cookie-signing secrets rotate like signing keys: files `keys/<YYYYMMDDTHHMMSSZ>.cookie-secret`, one secret
 * each. The newest activated one signs; those not yet active and all older ones still verify, so nobody is
 * logged out by a rotation; an old secret stops verifying when its file is removed. Secrets from COOKIE_SECRETS
 * come after the files' (they sign only when there are no files).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { activationFromKid, keyStates, kidForActivation, publicationOrder } from './key-states.js';
import { KeyFileError } from './signing-keys.js';

export const COOKIE_SECRET_SUFFIX = '.cookie-secret';
const MIN_SECRET_LENGTH = 32;
/** Replaced cookie secrets verify until their file is removed. */
const NEVER_RETIRE = Number.MAX_SAFE_INTEGER / 1000;

interface CookieSecretFile {
  kid: string;
  activatesAt: Date;
  secret: string;
}

async function readSecretFile(dir: string, name: string): Promise<CookieSecretFile> {
  const file = path.join(dir, name);
  const secret = (await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new KeyFileError(`${file}: cannot be read (${error.code})`);
  })).trim();
  if (secret.length < MIN_SECRET_LENGTH) throw new KeyFileError(`${file}: a cookie secret needs at least ${MIN_SECRET_LENGTH} characters`);
  const kid = name.slice(0, -COOKIE_SECRET_SUFFIX.length);
  return { kid, activatesAt: activationFromKid(kid) ?? new Date(0), secret };
}

/** Secrets in Keygrip order (the first signs, all verify) at `now`. */
export async function readCookieSecrets(dir: string, now: Date): Promise<string[]> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw new KeyFileError(`${dir}: cannot be read (${error.code})`);
  });
  const files = await Promise.all(names.filter((name) => name.endsWith(COOKIE_SECRET_SUFFIX)).map((name) => readSecretFile(dir, name)));
  return publicationOrder(files, keyStates(files, now, NEVER_RETIRE)).map((file) => file.secret);
}

/** Writes a new cookie secret that starts signing at `activatesAt`; exclusive, like key creation. */
export async function writeCookieSecret(dir: string, activatesAt: Date): Promise<{ kid: string; created: boolean }> {
  await mkdir(dir, { recursive: true });
  const kid = kidForActivation(activatesAt);
  try {
    await writeFile(path.join(dir, `${kid}${COOKIE_SECRET_SUFFIX}`), `${randomBytes(32).toString('base64url')}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
    return { kid, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return { kid, created: false };
    throw error;
  }
}
