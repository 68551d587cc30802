/**
 * Outermost middleware: a request id for correlation, one access-log line per request, and a last-resort
 * error handler so that nothing unexpected ever reaches a client as a stack trace.
 */
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { accessLoggerOf, type Logger } from '../logger.js';
import { OUTAGE_ANSWER, RETRY_AFTER_SECONDS, UNSTORABLE_TEXT_DESCRIPTION, isStoreOutage, isUnstorableText, logRefusedForOutage } from '../store/outages.js';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's X-Request-Id when it is safe to log and echo, else a fresh one. */
export function requestIdFor(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

export interface AccessLine {
  requestId: string;
  method: string;
  path: string;
  status: number;
  /** `performance.now()` when the request arrived. */
  started: number;
  clientId?: string;
}

/** One access-log line. The path only: query strings can carry hints and tokens that do not belong in logs. */
export function writeAccessLine(accessLog: Logger, line: AccessLine): void {
  const { requestId, method, path, status, started, clientId } = line;
  const ms = Math.round((performance.now() - started) * 10) / 10;
  accessLog.info({ requestId, method, path, status, ms, clientId }, 'request');
}

export function requestContext(logger: Logger): Middleware {
  const accessLog = accessLoggerOf(logger);
  return async (ctx, next) => {
    const requestId = requestIdFor(ctx.req.headers['x-request-id']);
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } catch (error) {
      respondToUnexpected(ctx, error, logger, requestId);
    } finally {
      // Every 503 we answer (a store outage, draining) passes soon: say when to come back.
      if (ctx.status === 503) ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
      writeAccessLine(accessLog, {
        requestId,
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        started,
        clientId: ctx.oidc?.client?.clientId,
      });
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
  if (isUnstorableText(error)) {
    ctx.status = 400;
    ctx.body = { error: 'invalid_request', error_description: UNSTORABLE_TEXT_DESCRIPTION };
    return;
  }
  if (isStoreOutage(error)) {
    logRefusedForOutage(logger, requestId, error);
    ctx.status = 503;
    ctx.body = OUTAGE_ANSWER;
    return;
  }
  logger.error({ err: error, requestId }, 'unexpected error');
  ctx.status = 500;
  ctx.body = { error: 'server_error', error_description: 'an unexpected error occurred', request_id: requestId };
}
