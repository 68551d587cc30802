/**
 * A path with a broken percent-encoding (`/auth/%E0%A4%A`) makes routers that decode it throw URIError, which
 * would surface as a 500. It is refused here with a 400 and a reason before any router sees it.
 */
import type { Middleware } from 'koa';

export function rejectMalformedPaths(): Middleware {
  return async (ctx, next) => {
    try {
      decodeURIComponent(ctx.path);
    } catch {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'the URL path is not validly percent-encoded' };
      return;
    }
    return next();
  };
}
