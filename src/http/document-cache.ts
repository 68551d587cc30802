/**
 * Discovery and JWKS are the same for every request until the signing keys change, yet oidc-provider rebuilds
 * them per request. They are answered from a copy of the provider's own answer: per Provider instance (a key
 * change builds a new one, which empties the cache), per origin (endpoint URLs follow the host the client used),
 * and for a few seconds only (discovery also depends on whether some client may use the password grant or token exchange).
 *
 * The Koa middleware fills the cache; `src/http/early-documents.ts` answers from it before Koa builds a context.
 * Both write an answer with `writeDocument`, so the bytes and headers are the same whichever path answered.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Middleware } from 'koa';

/** The documents' exact request targets: no query string, no absolute form. */
export const DOCUMENT_PATHS: ReadonlySet<string> = new Set([
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
  '/jwks',
]);
/** Hosts are client-chosen; a bounded cache cannot be grown by sending odd Host headers. */
const MAX_ENTRIES = 64;

export interface CachedDocument {
  /** Encoded once: each answer writes the same bytes. */
  body: Buffer;
  etag: string;
  type: string;
  cacheControl?: string;
  until: number;
}

export class ProviderDocumentCache {
  #owner: object | undefined;
  readonly #entries = new Map<string, CachedDocument>();

  /**
   * @param currentProvider the Provider serving now; the cache holds only what that one answered.
   * @param proxy whether X-Forwarded-Proto/-Host are trusted (Koa's `app.proxy`): they then choose the origin.
   */
  constructor(
    private readonly currentProvider: () => object,
    private readonly proxy: boolean,
    private readonly ttlMs = 5000,
  ) {}

  /** The fresh cached answer for a GET or HEAD of one of the documents, if there is one. */
  lookup(req: IncomingMessage): CachedDocument | undefined {
    this.#forgetOtherProviders();
    const entry = this.#entries.get(this.#keyOf(req));
    return entry && entry.until > Date.now() ? entry : undefined;
  }

  /** Answers from the cache, or lets the provider answer and keeps a copy of that answer. */
  middleware(): Middleware {
    return async (ctx, next) => {
      if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || !DOCUMENT_PATHS.has(ctx.path) || ctx.querystring) return next();
      const cached = this.lookup(ctx.req);
      if (cached) return answerInKoa(ctx, cached);

      const provider = this.currentProvider();
      await next();
      if (ctx.status !== 200 || ctx.method !== 'GET' || provider !== this.currentProvider() || typeof ctx.body !== 'object') return;
      const body = Buffer.from(JSON.stringify(ctx.body));
      const fresh: CachedDocument = {
        body,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
        type: ctx.response.get('Content-Type') || 'application/json',
        cacheControl: ctx.response.get('Cache-Control') || undefined,
        until: Date.now() + this.ttlMs,
      };
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
      this.#entries.set(this.#keyOf(ctx.req), fresh);
      answerInKoa(ctx, fresh); // the same bytes and ETag as every later answer
    };
  }

  #forgetOtherProviders(): void {
    const provider = this.currentProvider();
    if (provider === this.#owner) return;
    this.#entries.clear();
    this.#owner = provider;
  }

  /**
   * Everything Koa derives the request's origin from (its `protocol` and `host`), as sent: two requests with the
   * same key are answered the same document, whichever path reads it.
   */
  #keyOf(req: IncomingMessage): string {
    const tls = (req.socket as TLSSocket).encrypted ? 'tls' : '';
    const forwarded = this.proxy ? `${req.headers['x-forwarded-proto'] ?? ''} ${req.headers['x-forwarded-host'] ?? ''}` : '';
    return `${tls} ${forwarded} ${req.headers.host ?? ''} ${req.url}`;
  }
}

/** Writes a cached document as the answer to `req`; returns the status sent (200, or 304 for a matching ETag). */
export function writeDocument(req: IncomingMessage, res: ServerResponse, entry: CachedDocument): number {
  // What oidc-provider's open CORS policy would send for these documents.
  appendVaryOrigin(res);
  res.setHeader('Access-Control-Allow-Origin', req.headers.origin || '*');
  if (entry.cacheControl) res.setHeader('Cache-Control', entry.cacheControl);
  res.setHeader('ETag', entry.etag);
  // A relying party or API polling for key changes gets a 304 while the document is the same.
  if (noneMatch(req.headers['if-none-match'], entry.etag)) {
    res.statusCode = 304;
    res.end();
    return 304;
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', entry.type);
  res.setHeader('Content-Length', entry.body.length);
  res.end(req.method === 'HEAD' ? undefined : entry.body);
  return 200;
}

/**
 * Whether If-None-Match names this (strong) tag: RFC 9110 §13.1.2, a list of tags or `*`, compared weakly (a CDN
 * may have marked ours W/). Not the `fresh` package Koa and Express use: it answers 200 to any request with
 * `Cache-Control: no-cache`, which fetch() itself adds to every conditional request; that directive is for caches
 * on the way, and this server's 304 is the validation it asks for.
 */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** Inside Koa, written as outside it; Koa's `ctx.status` reads the status sent, for the access log and metrics. */
function answerInKoa(ctx: Parameters<Middleware>[0], entry: CachedDocument): void {
  ctx.respond = false;
  writeDocument(ctx.req, ctx.res, entry);
}

function appendVaryOrigin(res: ServerResponse): void {
  const vary = res.getHeader('Vary');
  if (vary === undefined) {
    res.setHeader('Vary', 'Origin');
    return;
  }
  const listed = String(vary);
  if (!/(^|,)\s*(origin|\*)\s*(,|$)/i.test(listed)) res.setHeader('Vary', `${listed}, Origin`);
}
