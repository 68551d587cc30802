/**
 * A backend job's access to an API: a client-credentials token (openid-client v6), cached until 30 seconds
 * before it expires and shared by concurrent callers, and `callApi()` that sends it and, should the API still
 * refuse it (`401 invalid_token`, e.g. after a key rotation or a revocation), fetches a new one and retries once.
 */
import * as oidc from 'openid-client';

export interface TokenSourceOptions {
  /** The authorization server's issuer identifier, e.g. https://id.example.com. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The API's resource indicator; without it the server's default API. */
  resource?: string;
  /** Scopes to ask for; without it every scope the client may have on that API. */
  scope?: string;
  /** Where the API lives, for `callApi(path)`. */
  apiUrl: string;
  /** The fetch used for the authorization server (tests count token requests with it). */
  fetch?: oidc.CustomFetch;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

/** Get a new token this long before the cached one expires. */
export const EXPIRY_MARGIN_MS = 30_000;

/** openid-client refuses plain http; allow it only for an issuer on this machine (local development). */
const isLoopback = (url: URL) => url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);

export class TokenSource {
  #config?: Promise<oidc.Configuration>;
  #cached?: { accessToken: string; refreshAt: number };
  #pending?: Promise<string>;
  readonly #now: () => number;

  constructor(private readonly options: TokenSourceOptions) {
    this.#now = options.now ?? Date.now;
  }

  /** The server's metadata, read once (discovery). */
  #configuration(): Promise<oidc.Configuration> {
    this.#config ??= (async () => {
      const issuer = new URL(this.options.issuer);
      const config = await oidc.discovery(
        issuer,
        this.options.clientId,
        undefined,
        oidc.ClientSecretBasic(this.options.clientSecret),
        {
          ...(isLoopback(issuer) ? { execute: [oidc.allowInsecureRequests] } : {}),
          ...(this.options.fetch ? { [oidc.customFetch]: this.options.fetch } : {}),
        },
      );
      if (this.options.fetch) config[oidc.customFetch] = this.options.fetch;
      return config;
    })();
    this.#config.catch(() => {
      this.#config = undefined; // try discovery again next time
    });
    return this.#config;
  }

  /** A valid access token: the cached one, or a new one (one request however many callers wait for it). */
  async getToken(): Promise<string> {
    if (this.#cached && this.#now() < this.#cached.refreshAt) return this.#cached.accessToken;
    this.#pending ??= this.#fetchToken().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /** Forgets the cached token (the API refused it). */
  invalidate(): void {
    this.#cached = undefined;
  }

  async #fetchToken(): Promise<string> {
    const parameters: Record<string, string> = {};
    if (this.options.resource) parameters.resource = this.options.resource;
    if (this.options.scope) parameters.scope = this.options.scope;
    const issuedAt = this.#now();
    const tokens = await oidc.clientCredentialsGrant(await this.#configuration(), parameters);
    const lifetimeMs = (tokens.expiresIn() ?? 0) * 1000;
    this.#cached = { accessToken: tokens.access_token, refreshAt: issuedAt + lifetimeMs - EXPIRY_MARGIN_MS };
    return tokens.access_token;
  }

  /** Calls the API with the token; a `401 invalid_token` gets one retry with a new token. */
  async callApi(path: string, init: RequestInit = {}): Promise<Response> {
    const url = new URL(path, `${this.options.apiUrl.replace(/\/$/, '')}/`);
    const call = async () => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${await this.getToken()}`);
      return fetch(url, { ...init, headers });
    };
    const response = await call();
    if (response.status !== 401 || !/error="invalid_token"/.test(response.headers.get('www-authenticate') ?? '')) return response;
    this.invalidate();
    return call();
  }
}
