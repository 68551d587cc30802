/**
 * Discovery and JWKS, answered from the document cache before Koa builds a context for the request.
 *
 * They are the most requested documents (every relying party and API polls them), and once cached an answer is
 * a copy of fixed bytes, yet Koa's context and middleware chain cost about a fifth of each answer: in alternated
 * benchmark runs a JWKS answer cost 58–74 µs of server CPU through Koa and 49–57 µs from here, with the same
 * headers, access-log line and metrics (bench/FINDINGS.md). Anything not in the cache, and every other request,
 * goes to Koa unchanged.
 *
 * What Koa's middleware gives every response is given here too, by the same functions: the request id, the
 * security headers, one access-log line and the request metrics. `test/e2e/early-documents.test.ts` compares
 * the two paths' answers header by header.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import { documentRoute, recordRequest } from '../metrics/http-metrics.js';
import type { Metrics } from '../metrics/metrics.js';
import { type CachedDocument, DOCUMENT_PATHS, type ProviderDocumentCache, writeDocument } from './document-cache.js';
import { requestIdFor, writeAccessLine } from './request-context.js';
import type { SecurityHeaderWriter } from './security-headers.js';

export interface EarlyDocumentsOptions {
  cache: ProviderDocumentCache;
  securityHeaders: SecurityHeaderWriter;
  accessLog: Logger;
  logger: Logger;
  metrics: Metrics;
}

/** A request listener that answers cached documents itself and hands everything else to `koa`. */
export function answerDocumentsEarly(options: EarlyDocumentsOptions, koa: RequestListener): RequestListener {
  return (req, res) => {
    const entry = isDocumentRequest(req) ? options.cache.lookup(req) : undefined;
    if (!entry) {
      koa(req, res);
      return;
    }
    try {
      answer(options, req, res, entry);
    } catch (error) {
      options.logger.error({ err: error }, 'answering a cached document failed');
      if (res.writableEnded) return; // answered; only the log line or the metrics failed
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Nothing was sent yet, so Koa can still answer this request from scratch.
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      koa(req, res);
    }
  };
}

function isDocumentRequest(req: IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.url !== undefined && DOCUMENT_PATHS.has(req.url);
}

function answer(options: EarlyDocumentsOptions, req: IncomingMessage, res: ServerResponse, entry: CachedDocument): void {
  const started = performance.now();
  const path = req.url as string;
  const method = req.method as string;
  // The order Koa's middleware sets them in: request id, then security headers, then the document's own.
  const requestId = requestIdFor(req.headers['x-request-id']);
  res.setHeader('X-Request-Id', requestId);
  options.securityHeaders(res, path);
  const status = writeDocument(req, res, entry);
  writeAccessLine(options.accessLog, { requestId, method, path, status, started });
  recordRequest(options.metrics, documentRoute(path) ?? 'other', method, status, started);
}
