/**
 * RFC 6749 §5.1: a response carrying tokens or credentials has `Cache-Control: no-store` and `Pragma: no-cache`
 * (for HTTP/1.0 caches). oidc-provider sets the first; this adds the second wherever the first was set.
 */
import type { Middleware } from 'koa';

export const noCachePragma: Middleware = async (ctx, next) => {
  await next();
  if (ctx.response.get('cache-control') === 'no-store') ctx.set('Pragma', 'no-cache');
};
