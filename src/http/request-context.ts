/**
 * Outermost middleware: a request id for correlation, one access-log line per request, and a last-resort
 * error handler so that nothing unexpected ever reaches a client as a stack trace.
 */
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { accessLoggerOf, type Logger } from '../logger.js';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestContext(logger: Logger): Middleware {
  const accessLog = accessLoggerOf(logger);
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } catch (error) {
      respondToUnexpected(ctx, error, logger, requestId);
    } finally {
      // The path only: query strings can carry hints and tokens that do not belong in logs.
      accessLog.info(
        {
          requestId,
          method: ctx.method,
          path: ctx.path,
          status: ctx.status,
          ms: Math.round((performance.now() - started) * 10) / 10,
          clientId: ctx.oidc?.client?.clientId,
        },
        'request',
      );
    }
  };
}

function respondToUnexpected(
  ctx: Parameters<Middleware>[0],
  error: unknown,
  logger: Logger,
  requestId: string,
): void {
  const status = (error as { status?: number; expose?: boolean }).status;
  const expose = (error as { expose?: boolean }).expose;
  if (status && status >= 400 && status < 500 && expose) {
    ctx.status = status;
    ctx.body = { error: 'invalid_request', error_description: (error as Error).message };
    return;
  }
  logger.error({ err: error, requestId }, 'unexpected error');
  ctx.status = 500;
  ctx.body = { error: 'server_error', error_description: 'an unexpected error occurred', request_id: requestId };
}
