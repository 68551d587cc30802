/**
 * Discovery and JWKS are the same for every request until the signing keys change, yet oidc-provider rebuilds
 * them per request. They are answered from a copy of the provider's own answer: per Provider instance (a key
 * change builds a new one, which empties the cache), per origin (endpoint URLs follow the host the client used),
 * and for a few seconds only (discovery also depends on whether some client may use the password grant).
 */
import { createHash } from 'node:crypto';
import type { Context, Middleware } from 'koa';

const DOCUMENTS = new Set(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks']);
/** Hosts are client-chosen; a bounded cache cannot be grown by sending odd Host headers. */
const MAX_ENTRIES = 64;

interface CachedDocument {
  /** Encoded once: each answer writes the same bytes. */
  body: Buffer;
  etag: string;
  type: string;
  cacheControl?: string;
  until: number;
}

export function cacheProviderDocuments(currentProvider: () => object, ttlMs = 5000): Middleware {
  let owner: object | undefined;
  const entries = new Map<string, CachedDocument>();

  const answer = (ctx: Context, entry: CachedDocument) => {
    // What oidc-provider's open CORS policy would send for these documents.
    ctx.vary('Origin');
    ctx.set('Access-Control-Allow-Origin', ctx.get('Origin') || '*');
    if (entry.cacheControl) ctx.set('Cache-Control', entry.cacheControl);
    ctx.set('ETag', entry.etag);
    // A relying party or API polling for key changes gets a 304 while the document is the same.
    if (ctx.get('If-None-Match') === entry.etag) {
      ctx.status = 304;
      return;
    }
    ctx.status = 200;
    // The header as the provider sent it, set directly: `ctx.type` would look the type up again on each answer.
    ctx.set('Content-Type', entry.type);
    ctx.body = entry.body;
  };

  return async (ctx, next) => {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || !DOCUMENTS.has(ctx.path) || ctx.querystring) return next();
    const provider = currentProvider();
    if (provider !== owner) {
      entries.clear();
      owner = provider;
    }
    const key = `${ctx.protocol}://${ctx.host}${ctx.path}`;
    const entry = entries.get(key);
    if (entry && entry.until > Date.now()) return answer(ctx, entry);

    await next();
    if (ctx.status !== 200 || ctx.method !== 'GET' || provider !== currentProvider() || typeof ctx.body !== 'object') return;
    if (entries.size >= MAX_ENTRIES) entries.clear();
    const body = Buffer.from(JSON.stringify(ctx.body));
    const fresh: CachedDocument = {
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      type: ctx.response.get('Content-Type') || 'application/json',
      cacheControl: ctx.response.get('Cache-Control') || undefined,
      until: Date.now() + ttlMs,
    };
    entries.set(key, fresh);
    answer(ctx, fresh); // the same bytes and ETag as every later answer
  };
}
