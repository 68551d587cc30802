/**
 * The end of a shutdown, once the load balancer has had SHUTDOWN_DELAY to stop sending: no new connections,
 * requests in flight finish, then the server's own resources close (audit log flushed, pools closed).
 *
 * A request may not finish: a client that sends its body a byte at a time, a query stuck behind a lock. Waiting
 * for it without end would keep a stopped instance up, so after `inFlightLimitMs` its connection is closed, the
 * log says so, and the resources are still closed in order. The exit code is 1 then, as for any shutdown that
 * was not clean.
 */
import type { Server } from 'node:http';
import type { Logger } from '../logger.js';

export interface ShutdownLimits {
  /** How long requests in flight may take to finish before their connections are closed. */
  inFlightLimitMs: number;
  /** How long closing the server's resources may take before the process gives up on them. */
  closeLimitMs: number;
}

/**
 * From the start of a shutdown, every response closes its connection (`Connection: close`). A load balancer or
 * client keeping a connection alive would otherwise send its next request on it just as the listener closes the
 * idle ones, and get a reset instead of an answer; told to close, it opens a new connection, which goes to an
 * instance (or, with workers, a worker) still serving.
 */
export function closeConnectionsAfterResponses(server: Server): void {
  server.prependListener('request', (_request, response) => {
    if (!response.headersSent) response.setHeader('connection', 'close');
  });
}

/** Resolves with the exit code: 0 when every request finished and everything closed in time, else 1. */
export async function drainAndClose(server: Server, closeResources: () => Promise<void>, logger: Logger, limits: ShutdownLimits): Promise<number> {
  const requestsFinished = await closeListener(server, logger, limits.inFlightLimitMs);
  const closed = await withinLimit(closeResources(), limits.closeLimitMs).then(
    (inTime) => {
      if (!inTime) logger.error({ waitedMs: limits.closeLimitMs }, 'shutdown: closing the database, Redis and audit log did not finish in time');
      return inTime;
    },
    (error: unknown) => {
      logger.error({ err: error }, 'error while closing');
      return false;
    },
  );
  if (closed) logger.info({ requestsFinished }, 'shut down');
  return requestsFinished && closed ? 0 : 1;
}

/** Stops accepting connections; resolves true when every request in flight finished within the limit. */
async function closeListener(server: Server, logger: Logger, limitMs: number): Promise<boolean> {
  const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  if (await withinLimit(listenerClosed, limitMs)) return true;
  const connections = await new Promise<number>((resolve) => server.getConnections((_, count) => resolve(count)));
  logger.warn({ connections, waitedMs: limitMs }, 'shutdown: requests still in flight after the wait; closing their connections');
  server.closeAllConnections();
  await listenerClosed;
  return false;
}

/** Resolves true if `promise` settles within `ms`, false if it is still pending then; rejects as it does. */
function withinLimit(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([promise.then(() => true), expired]).finally(() => clearTimeout(timer));
}
