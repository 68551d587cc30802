/**
 * The memory trim gives back to the system what malloc holds free: memory freed in the middle of the heap, which
 * glibc keeps for reuse (it returns only a free top of the heap on its own).
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { startMemoryTrim } from '../../src/memory-trim.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** This process's resident memory, MB (from /proc, as the benchmark reads it). */
const residentMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1024;

const BLOCK = 64 * 1024;

/** Fills 160 MB in 64 KiB blocks (below malloc's mmap threshold: they come from its heap), then frees 9 in 10. */
function fragmentTheHeap(): Buffer[] {
  const blocks = Array.from({ length: 2560 }, () => Buffer.allocUnsafeSlow(BLOCK).fill(1));
  const kept = blocks.filter((_, index) => index % 10 === 9);
  blocks.length = 0;
  collectGarbage();
  return kept;
}

const linux = process.platform === 'linux' ? describe : describe.skip;

linux('memory trim', () => {
  const logger = pino({ level: 'silent' });

  test('returns freed heap memory to the system within an interval', async () => {
    const kept = fragmentTheHeap();
    const before = residentMb();
    const stop = await startMemoryTrim(1, logger);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // About 144 MB were freed; without the trim nearly all of it stays resident.
      expect(before - residentMb()).toBeGreaterThan(64);
    } finally {
      stop();
    }
    expect(kept).toHaveLength(256);
  });

  test('an interval of 0 starts nothing', async () => {
    const kept = fragmentTheHeap();
    const before = residentMb();
    const stop = await startMemoryTrim(0, logger);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    stop();
    expect(before - residentMb()).toBeLessThan(32);
    expect(kept).toHaveLength(256);
  });
});
