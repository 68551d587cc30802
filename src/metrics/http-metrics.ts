/**
 * Request count and latency per route. The label is the provider's route name (`token`, `authorization`, …) or
 * one of ours, never the raw path, so that the number of series stays fixed whatever clients send.
 */
import type { Middleware } from 'koa';
import { METRICS_UNAUTHORIZED, metricsTokenPresented } from './metrics-access.js';
import type { Metrics } from './metrics.js';

/** The route label of the two cached documents, which are answered before the provider names the route. */
export function documentRoute(path: string): string | undefined {
  if (path === '/jwks') return 'jwks';
  if (path.startsWith('/.well-known/')) return 'discovery';
  return undefined;
}

function routeOf(ctx: Parameters<Middleware>[0]): string {
  const oidcRoute = (ctx as { oidc?: { route?: string } }).oidc?.route;
  if (oidcRoute) return oidcRoute;
  if (ctx.path.startsWith('/interaction/')) return 'interaction';
  if (ctx.path === '/healthz' || ctx.path === '/readyz' || ctx.path === '/metrics') return ctx.path.slice(1);
  if (ctx.path.startsWith('/assets/')) return 'assets';
  return documentRoute(ctx.path) ?? 'other';
}

/** Counts one answered request and its latency, from `performance.now()` at its start. */
export function recordRequest(metrics: Metrics, route: string, method: string, status: number, started: number): void {
  const seconds = (performance.now() - started) / 1000;
  metrics.httpRequests.inc({ route, method, status: String(status) });
  metrics.httpDuration.observe({ route, method }, seconds);
}

export function httpMetrics(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      recordRequest(metrics, routeOf(ctx), ctx.method, ctx.status, started);
    }
  };
}

/**
 * GET /metrics in the Prometheus text format, on the public port: to a scraper with the metrics token when one is
 * set, else openly. Production without METRICS_TOKEN does not mount it at all (./metrics-access.ts, src/app.ts).
 */
export function metricsRoute(metrics: Metrics, token?: string): Middleware {
  return async (ctx, next) => {
    if (ctx.path !== '/metrics' || ctx.method !== 'GET') return next();
    if (token && !metricsTokenPresented(ctx.get('authorization'), token)) {
      ctx.status = METRICS_UNAUTHORIZED.status;
      ctx.set(METRICS_UNAUTHORIZED.headers);
      ctx.body = METRICS_UNAUTHORIZED.body;
      return;
    }
    ctx.set('Content-Type', metrics.registry.contentType);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await metrics.registry.metrics();
  };
}
