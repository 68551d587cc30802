/**
 * Key states are a pure function of the keys and the clock.
 */
import { activationFromKid, keyStates, kidForActivation, publicationOrder } from '../../src/keys/key-states.js';

const at = (iso: string) => new Date(iso);
const HOUR = 3600;
const keys = [
  { kid: 'k1', activatesAt: at('2026-01-01T00:00:00Z') },
  { kid: 'k2', activatesAt: at('2026-02-01T00:00:00Z') },
  { kid: 'k3', activatesAt: at('2026-03-01T00:00:00Z') },
];
const stateAt = (iso: string) =>
  Object.fromEntries(keyStates(keys, at(iso), 24 * HOUR).map((status) => [status.kid, status.state]));

describe('key states', () => {
  test('before the next key activates: current, next, and an older one still previous for a day', () => {
    expect(stateAt('2026-02-01T12:00:00Z')).toEqual({ k3: 'next', k2: 'current', k1: 'previous' });
  });

  test('a replaced key expires once retireAfter has passed since its successor activated', () => {
    expect(stateAt('2026-02-02T00:00:00Z')).toEqual({ k3: 'next', k2: 'current', k1: 'expired' });
  });

  test('activation moves current forward', () => {
    expect(stateAt('2026-03-01T00:00:01Z')).toEqual({ k3: 'current', k2: 'previous', k1: 'expired' });
  });

  test('if every key is still ahead, the earliest signs', () => {
    expect(stateAt('2025-12-01T00:00:00Z')).toEqual({ k3: 'next', k2: 'next', k1: 'current' });
  });

  test('publication puts the signing key first and leaves expired keys out', () => {
    const statuses = keyStates(keys, at('2026-02-10T00:00:00Z'), 24 * HOUR);
    expect(publicationOrder(keys, statuses).map((key) => key.kid)).toEqual(['k2', 'k3']);
  });

  test('keys of each algorithm replace only one another: an ES256 key has its own current, and never retires an RS256 one', () => {
    const mixed = [
      ...keys,
      { kid: 'e1', activatesAt: at('2026-02-15T00:00:00Z'), alg: 'ES256' },
      { kid: 'e2', activatesAt: at('2026-04-01T00:00:00Z'), alg: 'ES256' },
    ];
    const statuses = keyStates(mixed, at('2026-02-20T00:00:00Z'), 24 * HOUR);
    expect(statuses.map((status) => [status.kid, status.state])).toEqual([
      ['k3', 'next'],
      ['k2', 'current'],
      ['k1', 'expired'],
      ['e2', 'next'],
      ['e1', 'current'],
    ]);
    // oidc-provider signs with the first key of the algorithm asked for: each current one comes before its next.
    const published = publicationOrder(mixed, statuses).map((key) => key.kid);
    expect(published.indexOf('k2')).toBeLessThan(published.indexOf('k3'));
    expect(published.indexOf('e1')).toBeLessThan(published.indexOf('e2'));
    expect(published).not.toContain('k1');
  });

  test('the kid carries the activation time', () => {
    const when = at('2026-11-24T13:45:00Z');
    expect(kidForActivation(when)).toBe('20261124T134500Z');
    expect(activationFromKid('20261124T134500Z')).toEqual(when);
    expect(activationFromKid('20261124-1')).toEqual(at('2026-11-24T00:00:00Z'));
    expect(activationFromKid('mykey')).toBeUndefined();
  });
});
