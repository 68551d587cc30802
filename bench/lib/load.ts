/** Load generators: autocannon for single requests, a small cookie-keeping driver for the browser-less login. */
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
  overallRate?: number;
}

export async function cannon(options: CannonOptions): Promise<Measurement> {
  const request: autocannon.Request = {
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
  };
  if (options.nextBody) {
    const next = options.nextBody;
    request.setupRequest = (req) => {
      const body = next();
      return body === undefined ? (undefined as unknown as autocannon.Request) : { ...req, body };
    };
  }
  const result = await autocannon({
    url: options.url,
    duration: options.seconds,
    connections: options.connections,
    overallRate: options.overallRate,
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
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { rps: latencies.length / elapsed, p50: at(0.5), p99: at(0.99), errors, total: latencies.length + errors, lastError };
}
