/**
 * Hands the memory glibc's malloc holds free back to the system, every MEMORY_TRIM_INTERVAL seconds.
 *
 * Why: glibc keeps freed blocks for reuse, and a worker under load frees many large ones (Node's 64 KiB read
 * buffers on the PostgreSQL and Redis sockets among them). Measured on 2026-12-02, `malloc_trim(0)` called
 * through gdb after a load took a worker from 144 to 126 MB of RSS; with this timer (1 s), the peak RSS per
 * worker over the client-credentials scenarios of `npm run bench -- --rounds 1 --only client_credentials` was
 * 131.6–136 MB against 145.6–149.9 MB without it (two alternated pairs, 2026-12-03), and 142.8 against 149.1 MB
 * over full runs, at no CPU cost that showed (client credentials → JWT, three alternated pairs: 849–910 against
 * 841–918 µs per request). A fixed mmap threshold got part of that and cost 15–25 % more CPU on small requests,
 * because every such buffer was then mapped and unmapped (bench/FINDINGS.md).
 *
 * Node has no binding for `malloc_trim`; koffi (a maintained FFI with prebuilt binaries) calls it, on one of
 * libuv's threads so the event loop never waits for it (a call took 0.1 ms at the median and up to 4.4 ms under
 * load). Where either is missing (not glibc, as on Alpine's musl; no prebuilt koffi for the platform) nothing
 * is trimmed and the server runs as before.
 */
import type { Logger } from './logger.js';

type Trim = { async(pad: number, done: (error: unknown, released: number) => void): void };

async function loadMallocTrim(): Promise<Trim> {
  const { default: koffi } = await import('koffi');
  return koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as unknown as Trim;
}

/** Starts the timer; the function returned stops it. Does nothing off Linux or when `intervalSeconds` is 0. */
export async function startMemoryTrim(intervalSeconds: number, logger: Logger): Promise<() => void> {
  const stopped = () => undefined;
  if (process.platform !== 'linux' || intervalSeconds <= 0) return stopped;
  let trim: Trim;
  try {
    trim = await loadMallocTrim();
  } catch (error) {
    logger.debug({ err: error }, 'malloc_trim is not available here: memory is not trimmed');
    return stopped;
  }
  let inFlight = false;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = true;
    trim.async(0, (error) => {
      inFlight = false;
      if (error) logger.debug({ err: error }, 'malloc_trim failed');
    });
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
