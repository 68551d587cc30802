/**
 * Runs our entry points as real child processes on the repository's own Node (the one npm scripts use).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import path from 'node:path';

export const repositoryRoot = path.resolve(import.meta.dirname, '..', '..');
export const nodeBinary = process.execPath;

/** The environment without anything that would point a child at the test run's own servers. */
export function cleanEnvironment(overrides: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(DATABASE_|REDIS_|ISSUER|PORT|KEYS_DIR|DATA_DIR|COOKIE_SECRETS|CLIENT_SECRET_PEPPERS|NODE_ENV|NODE_OPTIONS)/.test(name)) {
      delete env[name];
    }
  }
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) env[name] = value;
  return env;
}

export function runTs(script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
  return spawn(nodeBinary, ['--import', 'tsx', path.join(repositoryRoot, script), ...args], { cwd: repositoryRoot, env });
}

/** Runs to completion and collects output. */
export function runToEnd(script: string, args: string[], env: NodeJS.ProcessEnv, input?: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = runTs(script, args, env);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** Starts a long-running process and resolves once its stdout matches `ready`. */
export function startUntil(script: string, env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = 30_000) {
  return new Promise<{ child: ChildProcessWithoutNullStreams; stdout: string }>((resolve, reject) => {
    const child = runTs(script, [], env);
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not ready after ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (ready.test(stdout)) {
        clearTimeout(timer);
        resolve({ child, stdout });
      }
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before it was ready:\n${stdout}\n${stderr}`));
    });
  });
}

export function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.removeAllListeners('exit');
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

/** A TCP port nothing listens on right now (for a child process to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** An HTTP server on a free loopback port (the examples' apps and APIs), with its base URL. */
export async function listenHttp(handler?: RequestListener): Promise<{ http: Server; url: string }> {
  const http = createHttpServer();
  if (handler) http.on('request', handler);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { http, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
}

/** Closes a server from `listenHttp`, keep-alive connections included. */
export async function closeHttp(http: Server | undefined): Promise<void> {
  if (!http) return;
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
}

/**
 * Polls `probe` until it gives something other than undefined or false, and resolves to that; fails naming
 * `what` after `timeoutMs`.
 */
export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
