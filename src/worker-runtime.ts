/**
 * The runtime settings each cluster worker starts with: two V8 flags and one glibc setting that keep a worker's
 * memory near what it really holds. Each one yields to the operator's own setting.
 *
 * Peak RSS per worker over `npm run bench` (2 workers; about 53 MB of it is the node binary's own pages):
 * - V8 defaults: about 340 MB.
 * - 4 MB semi-spaces: about 230 MB. The young generation no longer grows to several large semi-spaces.
 * - `--heap-growing-percent=50` as well: 141–154 MB. Under load V8 had let the old generation grow to about four
 *   times what survives a full GC (95 MB, of which about 30 MB was live). With the flag, the next full GC comes
 *   when the old generation is 1.5× what survived the last one. It is a growth rule, not a cap: a worker that
 *   really holds more memory gets it, with no out-of-memory crash, unlike `--max-old-space-size`.
 * - 30 % growth and 2 MB semi-spaces: 134–144 MB, idle 102–104 MB (before the patch below).
 * - The CPU price, which the bench's totals hid in their noise and its split by thread shows: the young generation
 *   is collected far more often. Introspection, one worker pair, runs alternated (`npm run bench -- --rounds 1
 *   --only "introspection (opaque)"`, with and without `--node-args="--max-semi-space-size=0
 *   --heap-growing-percent=0"`): 1,316–1,882 µs of server CPU per request with these settings, 749–926 µs with
 *   V8's defaults, of which V8's GC threads 322–437 against 138–178 µs; peak RSS 116–122 against 252–257 MB.
 *   2 MB semi-spaces alone: 1,146 µs, 148–168 MB; 30 % growth alone: 911 µs, 228–236 MB. With 30 % growth,
 *   8 MB semi-spaces measured 967–1,556 µs (4 runs; ours 1,425–1,441 alongside) at 131–141 MB, and 16 MB ones
 *   1,097 µs at 148–158 MB, already at the 150 MB target in a single scenario. Client credentials → JWT, where
 *   signing dominates, did not change with 16 MB (2,957 against 3,000 µs). So the memory target and the
 *   small-request CPU pull against each other.
 * - Most of that pull was a bug in oidc-provider (patches/README.md): every request's objects survived the
 *   young-generation collections until the next full GC, 13–25 % of all allocation promoted. Patched, almost
 *   nothing a request allocates outlives it, so a larger young generation no longer fills the old one. Then,
 *   introspection, one round each (`--node-args="--max-semi-space-size=N --trace-gc-nvp" --server-log`):
 *   2 MB: 684/734 µs per request, scavenge pauses 1.1 s per run, peak 122–136 MB; 4 MB: 488/617 µs, 0.75–0.84 s,
 *   124–139 MB; 8 MB: 515/563 µs, 0.6 s, 134–147 MB but idle 115 MB. The full benchmark (3 rounds) with 4 MB:
 *   peak 141–148 MB (bench/results/2026-12-01T23-56-22-2w.md) against 141–142 MB with 2 MB just before
 *   (…T23-43-32), with less CPU per request in every scenario (introspection 395 against 690 µs, a noisy hour).
 *   The margin to 150 MB is thin; 8 MB would not keep it (147 MB in one scenario, idle 115 MB). Identical runs
 *   differ by 20 MB (2026-12-02: 131–157 MB over five one-round runs), so a change of a few MB needs many runs.
 * - `MALLOC_ARENA_MAX=2` caps glibc's malloc arenas (by default 8 per core). Signing runs on libuv's threads,
 *   and memory freed in each thread's own arena was kept: 10–60 MB outside the V8 heap after a run.
 */
const V8_FLAGS: ReadonlyArray<readonly [flag: string, value: string]> = [
  ['--max-semi-space-size', '4'],
  ['--heap-growing-percent', '30'],
];

const ENVIRONMENT: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * This process's own arguments for node, plus each flag of ours that neither they nor NODE_OPTIONS set.
 * (`--heap-growing-percent` is not allowed in NODE_OPTIONS: pass it to node on the command line.)
 */
export function workerExecArgv(execArgv: readonly string[], nodeOptions = ''): string[] {
  const operators = [...execArgv, nodeOptions];
  const ours = V8_FLAGS.filter(([flag]) => !operators.some((arg) => arg.includes(flag))).map(([flag, value]) => `${flag}=${value}`);
  return [...execArgv, ...ours];
}

/** Variables of ours to add to a worker's environment: those this process's environment does not set. */
export function workerEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(ENVIRONMENT).filter(([name]) => env[name] === undefined));
}
