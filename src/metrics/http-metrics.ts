/**
 * Request count and latency per route. The label is the provider's route name (`token`, `authorization`, …) or
 * one of ours, never the raw path, so that the number of series stays fixed whatever clients send.
 */
import type { Middleware } from 'koa';
import type { Metrics } from './metrics.js';

function routeOf(ctx: Parameters<Middleware>[0]): string {
  const oidcRoute = (ctx as { oidc?: { route?: string } }).oidc?.route;
  if (oidcRoute) return oidcRoute;
  if (ctx.path.startsWith('/interaction/')) return 'interaction';
  if (ctx.path === '/healthz' || ctx.path === '/readyz' || ctx.path === '/metrics') return ctx.path.slice(1);
  if (ctx.path.startsWith('/assets/')) return 'assets';
  // Served from the document cache, before the provider names the route.
  if (ctx.path === '/jwks') return 'jwks';
  if (ctx.path.startsWith('/.well-known/')) return 'discovery';
  return 'other';
}

export function httpMetrics(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const stop = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const route = routeOf(ctx);
      const seconds = Number(process.hrtime.bigint() - stop) / 1e9;
      metrics.httpRequests.inc({ route, method: ctx.method, status: String(ctx.status) });
      metrics.httpDuration.observe({ route, method: ctx.method }, seconds);
    }
  };
}

/** GET /metrics in the Prometheus text format. */
export function metricsRoute(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    if (ctx.path !== '/metrics' || ctx.method !== 'GET') return next();
    ctx.set('Content-Type', metrics.registry.contentType);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await metrics.registry.metrics();
  };
}
