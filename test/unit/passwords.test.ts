import { PasswordHasher } from '../../src/accounts/passwords.js';

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** The fastest of a few runs: the machine is shared, and only the slower direction is noise. */
async function fastest(runs: number, work: () => Promise<number>): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < runs; run++) best = Math.min(best, await work());
  return best;
}

describe('PasswordHasher', () => {
  test('with the decoy prepared, the first unknown email takes one bcrypt comparison, as a known one does', async () => {
    const stored = await new PasswordHasher(10).hash('the right password');
    const known = await fastest(3, () => timed(() => new PasswordHasher(10).verify('a wrong password', stored)));
    const firstUnknown = await fastest(3, async () => {
      const hasher = new PasswordHasher(10);
      await hasher.prepareDecoy();
      return timed(() => hasher.verify('a wrong password', null));
    });
    // Made on first use, the decoy doubled the first unknown email's time (a hash, then a comparison).
    expect(firstUnknown).toBeLessThan(known * 1.5);
  });

  test('answers false for an unknown email', async () => {
    await expect(new PasswordHasher(4).verify('anything at all', null)).resolves.toBe(false);
  });
});
