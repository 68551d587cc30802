/**
 * If answering a cached document before Koa fails before anything was sent, Koa answers the request instead:
 * the client never sees a half-written answer or a dropped connection.
 */
import Koa from 'koa';
import { ProviderDocumentCache } from '../../src/http/document-cache.js';
import { answerDocumentsEarly } from '../../src/http/early-documents.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { closeHttp, listenHttp } from '../support/process.js';

test('a failure before anything is sent hands the request to Koa, without the headers set so far', async () => {
  const provider = {};
  const cache = new ProviderDocumentCache(() => provider, false);
  const app = new Koa();
  app.use(cache.middleware());
  app.use((ctx) => {
    ctx.set('X-Answered-By', 'koa');
    ctx.body = { keys: [] };
  });
  const logger = createLogger('silent', false);
  let attempts = 0;
  const failing = () => {
    attempts += 1;
    throw new Error('header writer failed');
  };
  const handleRequest = answerDocumentsEarly(
    { cache, securityHeaders: failing, accessLog: logger, logger, metrics: new Metrics({ keyStatuses: () => [] }) },
    (req, res) => {
      res.setHeader('X-Handed-To-Koa', String(res.getHeaderNames().length === 0));
      app.callback()(req, res);
    },
  );
  const server = await listenHttp(handleRequest);
  try {
    const first = await fetch(`${server.url}/jwks`); // fills the cache through Koa
    expect(first.status).toBe(200);
    expect(attempts).toBe(0);

    const second = await fetch(`${server.url}/jwks`);
    expect(second.status).toBe(200);
    expect(attempts).toBe(1); // the early path found it cached, and failed
    expect(second.headers.get('x-handed-to-koa')).toBe('true');
    expect(second.headers.get('x-request-id')).toBeNull();
    expect(await second.json()).toEqual({ keys: [] });
  } finally {
    await closeHttp(server.http);
  }
});
