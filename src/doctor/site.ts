/**
 * The deployment under test, seen only over HTTP: every request has a timeout, every network failure becomes a
 * one-line reason (a `ProbeError`), and each document is fetched once however many checks read it.
 */

export const TIMEOUT_MS = 10_000;

/** A reason a check failed that is meant for the operator: shown as is, never with a stack trace. */
export class ProbeError extends Error {
  override name = 'ProbeError';
}

export type Json = Record<string, unknown>;

export interface Fetched<T> {
  response: Response;
  body: T;
  /** Local time when the answer arrived (for the clock-skew check). */
  receivedAt: number;
}

export interface ClientCredentials {
  id: string;
  secret: string;
}

export interface DoctorOptions {
  issuer: string;
  /** Check the production headers even when the issuer is not https. */
  production: boolean;
  client?: ClientCredentials;
  resource?: string;
}

function networkReason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  // fetch will not connect to ports browsers block (9, 25, 6000, …; the WHATWG "bad port" list).
  if (cause?.message === 'bad port') return 'unreachable (fetch refuses this port: it is on the WHATWG blocked-port list)';
  if (cause?.message) return `unreachable (${cause.message})`;
  return `unreachable (${error instanceof Error ? error.message : String(error)})`;
}

/** fetch with a timeout, no redirects followed, and a readable reason when the network fails. */
export async function request(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, { redirect: 'manual', ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    throw new ProbeError(`${init.method ?? 'GET'} ${url}: ${networkReason(error)}`);
  }
}

/** Reads a body, turning a timeout while it streams into a ProbeError too. */
async function readText(url: string, response: Response): Promise<string> {
  try {
    return await response.text();
  } catch (error) {
    throw new ProbeError(`GET ${url}: ${networkReason(error)}`);
  }
}

/** GET a JSON object that must answer 200. */
export async function getJson(url: string): Promise<Fetched<Json>> {
  const response = await request(url, { headers: { accept: 'application/json' } });
  const text = await readText(url, response);
  const receivedAt = Date.now();
  if (response.status !== 200) throw new ProbeError(`GET ${url} answered ${response.status}, not 200`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ProbeError(`GET ${url} did not answer JSON (${response.headers.get('content-type') ?? 'no content-type'})`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ProbeError(`GET ${url} did not answer a JSON object`);
  return { response, body: body as Json, receivedAt };
}

/** RFC 8414 §3: the well-known segment goes between the host and any path of the issuer. */
export function wellKnown(issuer: string, name: string): string {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, '');
  return `${url.origin}/.well-known/${name}${path}`;
}

/** OpenID Connect Discovery §4: the well-known segment is appended to the issuer. */
export const openidConfigurationUrl = (issuer: string) => `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;

export class Site {
  readonly #cache = new Map<string, Promise<unknown>>();

  constructor(readonly options: DoctorOptions) {}

  get issuer(): string {
    return this.options.issuer;
  }

  /** Runs `load` once per run, whichever check asks first. */
  once<T>(key: string, load: () => Promise<T>): Promise<T> {
    let pending = this.#cache.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = load();
      // A failure is reported by whichever check awaits it; keep it from being "unhandled" meanwhile.
      pending.catch(() => undefined);
      this.#cache.set(key, pending);
    }
    return pending;
  }

  discovery(): Promise<Fetched<Json>> {
    return this.once('discovery', () => getJson(openidConfigurationUrl(this.issuer)));
  }

  serverMetadata(): Promise<Fetched<Json>> {
    return this.once('metadata', () => getJson(wellKnown(this.issuer, 'oauth-authorization-server')));
  }

  /** A URL the discovery document names (ProbeError when it names none). */
  async endpoint(name: string): Promise<string> {
    const value = (await this.discovery()).body[name];
    if (typeof value !== 'string' || !value) throw new ProbeError(`discovery has no ${name}`);
    return value;
  }

  async jwks(): Promise<Fetched<Json>> {
    const uri = await this.endpoint('jwks_uri');
    return this.once('jwks', () => getJson(uri));
  }

  /** The authorization endpoint with no parameters, as a browser asks for it: an error page. */
  async authorizeErrorPage(): Promise<Response> {
    const uri = await this.endpoint('authorization_endpoint');
    return this.once('authorize', async () => {
      const response = await request(uri, { headers: { accept: 'text/html' } });
      await readText(uri, response);
      return response;
    });
  }
}
