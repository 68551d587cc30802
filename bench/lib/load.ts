/**
 * Load generators: autocannon for single requests at full speed, an evenly paced open-loop driver for a fixed
 * rate, and a small cookie-keeping driver for the browser-less login.
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';

export interface Measurement {
  /** Successful (2xx) requests — or completed flows — per second. */
  rps: number;
  p50: number;
  p99: number;
  /** Connection errors, timeouts and non-2xx answers. */
  errors: number;
  total: number;
}

export interface CannonOptions {
  url: string;
  seconds: number;
  connections: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Gives each request its own body (e.g. a fresh refresh token); undefined ends that connection's requests. */
  nextBody?: () => string | undefined;
  /** Gives each request its own headers (e.g. another client's credentials). */
  nextHeaders?: () => Record<string, string>;
}

export async function cannon(options: CannonOptions): Promise<Measurement> {
  const request: autocannon.Request = {
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
  };
  const { nextBody, nextHeaders } = options;
  if (nextBody || nextHeaders) {
    request.setupRequest = (req) => {
      const body = nextBody ? nextBody() : req.body;
      if (body === undefined) return undefined as unknown as autocannon.Request;
      return { ...req, body, headers: nextHeaders ? nextHeaders() : req.headers };
    };
  }
  const result = await autocannon({
    url: options.url,
    duration: options.seconds,
    connections: options.connections,
    requests: [request],
  });
  const ok = result['2xx'];
  return {
    rps: ok / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    total: result.requests.total,
  };
}

export interface PacedOptions {
  url: string;
  seconds: number;
  /** Requests per second, offered whatever the answers' speed. */
  rate: number;
  /** Keep-alive connections at most; a request due while all are busy waits for one, and that wait counts. */
  connections: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

/**
 * Open-loop load at a fixed rate, evenly spaced: request i is due at start + i/rate, and its latency counts from
 * then, so that a slow answer cannot hide the requests queued behind it (no coordinated omission).
 *
 * autocannon's `overallRate` measures something else. Each connection sends flat out until it has used its
 * share of the second and then waits for the next second (lib/httpClient.js), so "half the max rate" is the max
 * rate for half of every second. And its coordinated-omission correction takes `Math.ceil(1 / rate)` — seconds —
 * as the expected interval of latencies in milliseconds: 1 ms, so that every answer slower than 1 ms adds
 * phantom samples.
 */
export async function paced(options: PacedOptions): Promise<Measurement> {
  const url = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const body = options.body ?? '';
  const headers = { ...options.headers, ...(options.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) };
  const latencies: number[] = [];
  let errors = 0;
  const send = (due: number) =>
    new Promise<void>((resolve) => {
      // Counted once: a timeout after the answer began fires on both the request and the response.
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        if (ok) latencies.push(performance.now() - due);
        else errors++;
        resolve();
      };
      const request = http.request({ agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: options.method ?? 'GET', headers }, (response) => {
        response.resume();
        response.once('end', () => settle((response.statusCode ?? 0) >= 200 && (response.statusCode ?? 0) < 300));
        response.once('error', () => settle(false));
      });
      request.setTimeout(10_000, () => request.destroy(new Error('timeout')));
      request.once('error', () => settle(false));
      request.end(body);
    });

  const interval = 1000 / options.rate;
  const started = performance.now();
  const until = started + options.seconds * 1000;
  const answers: Promise<void>[] = [];
  for (let sent = 0; ; ) {
    const now = performance.now();
    if (now >= until) break;
    for (let due = started + sent * interval; due <= now && due < until; due = started + sent * interval) {
      answers.push(send(due));
      sent++;
    }
    await sleep(Math.max(0, started + sent * interval - performance.now()));
  }
  await Promise.all(answers);
  agent.destroy();
  return { ...summarize(latencies, options.seconds), errors, total: latencies.length + errors };
}

/** Requests per second and latency percentiles of the successful requests. */
function summarize(latencies: number[], seconds: number): Pick<Measurement, 'rps' | 'p50' | 'p99'> {
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { rps: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
}

/** Runs `flow` in `concurrency` loops for `seconds`; each resolved flow counts once, each rejected one as an error. */
export async function loop(seconds: number, concurrency: number, flow: (lane: number) => Promise<void>): Promise<Measurement & { lastError?: string }> {
  const latencies: number[] = [];
  let errors = 0;
  let lastError: string | undefined;
  const started = performance.now();
  const until = started + seconds * 1000;
  const lane = async (index: number) => {
    while (performance.now() < until) {
      const begun = performance.now();
      try {
        await flow(index);
        latencies.push(performance.now() - begun);
      } catch (error) {
        errors++;
        lastError = error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => lane(index)));
  const elapsed = (performance.now() - started) / 1000;
  return { ...summarize(latencies, elapsed), errors, total: latencies.length + errors, lastError };
}
