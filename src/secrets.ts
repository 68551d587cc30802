/**
 * Development secrets: on the embedded default the server generates its cookie secrets and client-secret pepper on
 * first start and keeps them in DATA_DIR/secrets.json, so that sessions and client secrets survive a restart.
 * Production never reaches this: it refuses to start without them (config.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config.js';

interface StoredSecrets {
  cookieSecrets: string[];
  clientSecretPeppers: { kid: string; secret: string }[];
}

const newSecret = () => randomBytes(32).toString('base64url');

async function readStored(file: string): Promise<StoredSecrets | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as StoredSecrets;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${file} is not readable JSON; delete it to generate new development secrets`);
  }
}

/** Fills in missing cookie secrets and peppers from DATA_DIR/secrets.json, creating it when absent. */
export async function ensureDevelopmentSecrets(config: Config): Promise<void> {
  if (config.cookieSecrets.length > 0 && config.clientSecretPeppers.length > 0) return;
  const file = path.join(config.dataDir, 'secrets.json');
  let stored = await readStored(file);
  if (!stored) {
    stored = { cookieSecrets: [newSecret()], clientSecretPeppers: [{ kid: 'p1', secret: newSecret() }] };
    await mkdir(config.dataDir, { recursive: true });
    await writeFile(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error) => {
      // Another worker won the race to create it: use theirs.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      stored = await readStored(file);
    });
  }
  if (config.cookieSecrets.length === 0) config.cookieSecrets = stored?.cookieSecrets ?? [];
  if (config.clientSecretPeppers.length === 0) config.clientSecretPeppers = stored?.clientSecretPeppers ?? [];
}
