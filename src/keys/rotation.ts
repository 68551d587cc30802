/**
 * Key rotation, by hand (`authz keys rotate|list|prune`) or on a schedule (KEY_ROTATION_INTERVAL). Rotation only
 * ever adds a file that activates later; instances pick it up on their next scan and agree on every state
 * because states depend on nothing but the files and the clock.
 */
import { stat, unlink } from 'node:fs/promises';
import type { Config } from '../config.js';
import { KeyRing } from './key-ring.js';
import type { KeyStatus } from './key-states.js';
import { type SigningAlg, writeNewKey } from './signing-keys.js';

const MINUTE = 60_000;

function openRing(config: Config, now?: () => Date): Promise<KeyRing> {
  return KeyRing.open({
    keysDir: config.keys.dir,
    passphrase: config.keys.passphrase,
    retireAfterSeconds: config.keys.retireAfterSeconds,
    now,
    allowEmpty: true,
  });
}

export interface RotationResult {
  kid: string;
  alg: SigningAlg;
  activatesAt: Date;
  created: boolean;
  /** What an immediate activation can break, for the operator to read. */
  warning?: string;
}

/**
 * Adds a key of `alg` (default RS256) that becomes current after `activateInSeconds` (default: the configured
 * activation delay).
 */
export async function rotateKey(
  config: Config,
  activateInSeconds = config.keys.activationDelaySeconds,
  now = new Date(),
  alg: SigningAlg = 'RS256',
): Promise<RotationResult> {
  // Whole seconds: the activation time is written into the file name.
  const activatesAt = new Date(Math.ceil((now.getTime() + activateInSeconds * 1000) / 1000) * 1000);
  const { kid, created } = await writeNewKey(config.keys.dir, { activatesAt, passphrase: config.keys.passphrase, alg });
  const warning =
    activateInSeconds < config.keys.jwksMaxAgeSeconds
      ? `the key signs in ${activateInSeconds}s, before relying parties' cached JWKS (max-age ${config.keys.jwksMaxAgeSeconds}s) expire: ` +
        'those that do not refetch JWKS on an unknown kid will reject new tokens until their cache expires'
      : undefined;
  return { kid, alg, activatesAt, created, warning };
}

export async function listKeys(config: Config, now?: () => Date): Promise<KeyStatus[]> {
  return (await openRing(config, now)).statuses;
}

/** Each key's status with the time its file was written (what `authz keys list` shows). */
export async function describeKeys(config: Config, now?: () => Date): Promise<(KeyStatus & { createdAt: Date })[]> {
  const ring = await openRing(config, now);
  const created = new Map(await Promise.all(ring.files.map(async (file) => [file.kid, (await stat(file.file)).mtime] as const)));
  return ring.statuses.map((status) => ({ ...status, createdAt: created.get(status.kid) ?? status.activatesAt }));
}

/** Deletes the files of expired keys; returns their paths. */
export async function pruneKeys(config: Config, now?: () => Date): Promise<string[]> {
  const files = (await openRing(config, now)).expiredFiles;
  await Promise.all(files.map((file) => unlink(file)));
  return files;
}

/**
 * With KEY_ROTATION_INTERVAL set: for each algorithm whose current key is due for replacement and has no next key,
 * creates one. The new key's activation time (and so its file name) is derived from the current key, so instances
 * that race here all try to create the same file and exactly one succeeds.
 */
export async function rotateIfDue(config: Config, ring: KeyRing): Promise<RotationResult[]> {
  const algorithms = [...new Set(ring.files.map((file) => file.alg))];
  const results: RotationResult[] = [];
  for (const alg of algorithms) {
    const result = await rotateAlgorithmIfDue(config, ring, alg);
    if (result) results.push(result);
  }
  return results;
}

async function rotateAlgorithmIfDue(config: Config, ring: KeyRing, alg: SigningAlg): Promise<RotationResult | undefined> {
  const interval = config.keys.rotationIntervalSeconds;
  if (!interval) return undefined;
  const statuses = ring.statuses.filter((status) => (status.alg ?? 'RS256') === alg);
  if (statuses.some((status) => status.state === 'next')) return undefined;
  const current = statuses.find((status) => status.state === 'current');
  if (!current) return undefined;
  const now = ring.now();
  const delay = config.keys.activationDelaySeconds * 1000;
  let activatesAt = new Date(current.activatesAt.getTime() + interval * 1000);
  // Due one rescan early: scans come every KEYS_RESCAN_INTERVAL, so the first scan to find the key due is still
  // `delay` ahead of `activatesAt` and writes the shared name below. Due only at `activatesAt - delay`, that scan
  // was (almost) always a little late and took the overdue path, whose name depends on when each instance looked.
  const rescan = config.keys.rescanIntervalSeconds * 1000;
  if (now.getTime() < activatesAt.getTime() - delay - rescan) return undefined;
  // Overdue (the servers were down): publish for the full delay first, on a minute boundary all instances share.
  if (activatesAt.getTime() < now.getTime() + delay) activatesAt = new Date(Math.ceil((now.getTime() + delay) / MINUTE) * MINUTE);
  const { kid, created } = await writeNewKey(config.keys.dir, { activatesAt, passphrase: config.keys.passphrase, alg });
  return { kid, alg, activatesAt, created };
}
