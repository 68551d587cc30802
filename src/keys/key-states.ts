/**
 * Each signing key's state is a pure function of the key files and the clock, so every instance and every worker
 * computes the same answer without talking to the others:
 *
 *   next      activation time still ahead: published in JWKS (so relying parties cache it early), not signing
 *   current   the most recently activated key: signs
 *   previous  replaced by a newer key less than `retireAfter` ago: published, so what it signed still verifies
 *   expired   replaced longer ago: no longer published; `authz keys prune` may delete the file
 *
 * A key's activation time is part of its file name (`<YYYYMMDDTHHMMSSZ>[-label].pem`); it becomes the `kid`.
 * Keys of one algorithm replace one another: an ES256 key never retires an RS256 one, and each has its current.
 */

export type KeyState = 'next' | 'current' | 'previous' | 'expired';

export interface KeyTimes {
  kid: string;
  activatesAt: Date;
  /** What it signs with; unset: RS256. */
  alg?: string;
}

export interface KeyStatus extends KeyTimes {
  state: KeyState;
  /** When the key stops being published: its successor's activation plus `retireAfter`; unknown while it has none. */
  retiresAt?: Date;
}

const STAMP = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})Z)?(?:$|[-_.])/;

/** The activation time written at the start of a key's name, or undefined when the name carries none. */
export function activationFromKid(kid: string): Date | undefined {
  const match = STAMP.exec(kid);
  if (!match) return undefined;
  const [, year, month, day, hour = '00', minute = '00', second = '00'] = match;
  const date = new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The name a key activating at `at` gets: the same on every instance, so racing creators collide on one file. */
export function kidForActivation(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * States of all keys at `now`: RS256's first, then each other algorithm's, each newest activation first.
 * `retireAfterSeconds` covers the longest-lived signed token.
 */
export function keyStates(keys: readonly KeyTimes[], now: Date, retireAfterSeconds: number): KeyStatus[] {
  const algorithms = [...new Set(keys.map((key) => key.alg ?? 'RS256'))].sort((a, b) => Number(b === 'RS256') - Number(a === 'RS256') || a.localeCompare(b));
  return algorithms.flatMap((alg) => statesOfOneAlgorithm(keys.filter((key) => (key.alg ?? 'RS256') === alg), now, retireAfterSeconds));
}

function statesOfOneAlgorithm(keys: readonly KeyTimes[], now: Date, retireAfterSeconds: number): KeyStatus[] {
  const byActivation = [...keys].sort(
    (a, b) => b.activatesAt.getTime() - a.activatesAt.getTime() || b.kid.localeCompare(a.kid),
  );
  let currentFound = false;
  const statuses: KeyStatus[] = byActivation.map((key, index) => {
    const successor = byActivation[index - 1];
    const retiresAt = successor ? new Date(successor.activatesAt.getTime() + retireAfterSeconds * 1000) : undefined;
    let state: KeyState;
    if (key.activatesAt > now) state = 'next';
    else if (!currentFound) {
      state = 'current';
      currentFound = true;
    } else state = retiresAt && retiresAt <= now ? 'expired' : 'previous';
    return { ...key, state, retiresAt };
  });
  // Every key is still ahead (a folder seeded with a future key): the earliest signs until the rest activate.
  const earliest = statuses.at(-1);
  if (!currentFound && earliest) earliest.state = 'current';
  return statuses;
}

/**
 * The keys to publish, ordered so that oidc-provider signs with the first of each algorithm: current, then next,
 * then previous.
 */
export function publicationOrder<T extends KeyTimes>(keys: readonly T[], statuses: readonly KeyStatus[]): T[] {
  const rank: Record<KeyState, number> = { current: 0, next: 1, previous: 2, expired: 3 };
  const stateOf = new Map(statuses.map((status) => [status.kid, status.state]));
  return keys
    .filter((key) => stateOf.get(key.kid) !== 'expired')
    .sort(
      (a, b) =>
        rank[stateOf.get(a.kid) ?? 'expired'] - rank[stateOf.get(b.kid) ?? 'expired'] ||
        b.activatesAt.getTime() - a.activatesAt.getTime(),
    );
}
