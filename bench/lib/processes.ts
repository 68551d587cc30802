/** Child processes for the server and the references: start, wait until they answer, sample RSS, stop. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const FORWARDED = { 'x-forwarded-proto': 'https' } as const;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Child {
  name: string;
  process: ChildProcess;
  /** What the child wrote to stderr (last 8 kB), for error messages. */
  stderr(): string;
  stop(): Promise<void>;
}

/** Where a child's standard output goes: nowhere, a pipe to read, or an open file descriptor. */
export type ChildStdout = 'ignore' | 'pipe' | number;

/** Runs a TypeScript file under the same Node (and tsx loader) as this process. */
export function startTs(name: string, file: string, env: Record<string, string>, stdout: ChildStdout = 'ignore'): Child {
  return startNode(name, ['--import', 'tsx', file], env, stdout);
}

/** Runs `node <args>` with the same Node as this process. */
export function startNode(name: string, args: string[], env: Record<string, string>, stdout: ChildStdout = 'ignore'): Child {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', stdout, 'pipe'],
  });
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors = (errors + chunk.toString()).slice(-8192);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    process: child,
    stderr: () => errors,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `url` until it answers 200 (and then a few more times, so that every worker is up). */
export async function waitForHttp(child: Child, url: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let answered = 0;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited during start-up:\n${child.stderr()}`);
    try {
      const response = await fetch(url, { headers: FORWARDED });
      await response.arrayBuffer();
      if (response.status === 200 && ++answered >= 5) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, answered > 0 ? 300 : 200));
  }
  throw new Error(`${child.name} did not answer ${url} within ${timeoutMs} ms:\n${child.stderr()}`);
}

/** The processes that serve: the cluster workers of `pid`, or `pid` itself when it has none. */
export function servingPids(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return children.length > 0 ? children : [pid];
  } catch {
    return [pid];
  }
}

/** VmRSS in MB, or undefined when the process is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples the RSS of the serving processes every 250 ms until stopped; returns the peak per process. */
export function sampleRss(pid: number): () => Map<number, number> {
  const peaks = new Map<number, number>();
  const sample = () => {
    for (const worker of servingPids(pid)) {
      const mb = rssMb(worker);
      if (mb !== undefined) peaks.set(worker, Math.max(peaks.get(worker) ?? 0, mb));
    }
  };
  sample();
  const timer = setInterval(sample, 250);
  return () => {
    clearInterval(timer);
    sample();
    return peaks;
  };
}

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on Linux

/**
 * utime + stime of a process (all its threads) in clock ticks, with its command name; undefined once it is gone.
 * Given a task's stat file, the same for one thread.
 */
function processTicks(pid: number, statFile = `/proc/${pid}/stat`): { command: string; ticks: number; reapedTicks: number } | undefined {
  try {
    const stat = readFileSync(statFile, 'utf8');
    // Fields after the command name (which may hold spaces): state is [0], utime [11], stime [12], and what the
    // children it has waited for used, cutime [13] and cstime [14].
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      command: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      ticks: Number(fields[11]) + Number(fields[12]),
      reapedTicks: Number(fields[13]) + Number(fields[14]),
    };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system, all threads) used so far by `pid` and its cluster workers. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const process of new Set([pid, ...servingPids(pid)])) ticks += processTicks(process)?.ticks ?? 0;
  return ticks / TICKS_PER_SECOND;
}

/** CPU seconds so far of the threads of `pid` and its cluster workers, by kind of thread. */
export interface ThreadCpu {
  /** The JavaScript thread of each process. */
  main: number;
  /** libuv's pool: bcrypt, WebCrypto signing, file system. */
  pool: number;
  /** V8's platform workers: concurrent and parallel GC, background compilation. */
  v8: number;
  other: number;
}

export function threadCpuSeconds(pid: number): ThreadCpu {
  const split: ThreadCpu = { main: 0, pool: 0, v8: 0, other: 0 };
  for (const process of new Set([pid, ...servingPids(pid)])) {
    let threads: string[] = [];
    try {
      threads = readdirSync(`/proc/${process}/task`);
    } catch {
      continue; // gone
    }
    for (const thread of threads) {
      const stat = processTicks(Number(thread), `/proc/${process}/task/${thread}/stat`);
      if (!stat) continue;
      const kind = Number(thread) === process ? 'main' : stat.command.startsWith('libuv-worker') ? 'pool' : stat.command.startsWith('V8Worker') ? 'v8' : 'other';
      split[kind] += stat.ticks / TICKS_PER_SECOND;
    }
  }
  return split;
}

const STORE_COMMANDS = new Set(['postgres', 'redis-server']);

/**
 * CPU seconds used so far by every PostgreSQL and Redis server process on this machine: the stores the server
 * under test talks to (and whatever else uses them meanwhile). A PostgreSQL backend that exits in between (a pool
 * closing an idle connection, another client disconnecting) still counts: the postmaster reaps it, and its time
 * moves to the postmaster's children's time, which is added; without that, the sum could fall during a scenario.
 */
export function storeCpuSeconds(): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const process = processTicks(Number(entry));
    if (process && STORE_COMMANDS.has(process.command)) ticks += process.ticks + process.reapedTicks;
  }
  return ticks / TICKS_PER_SECOND;
}
