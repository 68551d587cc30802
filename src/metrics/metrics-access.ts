/**
 * Who may read /metrics. Its labels name clients and routes, and its counters tell how the server is used, so in
 * production it is not served to the internet: either on METRICS_PORT, a port of its own kept off the public
 * network (Keycloak's management port, Hydra's admin port), or, on the public port, only to a scraper that sends
 * `Authorization: Bearer <METRICS_TOKEN>` (Prometheus's `authorization` in its scrape config). With METRICS_TOKEN
 * set, METRICS_PORT asks for it too. Development serves it openly, as before.
 */
import { timingSafeEqual } from 'node:crypto';

export type MetricsAccess = 'open' | 'token' | 'closed';

/** How /metrics is served on the public port. */
export const publicMetricsAccess = (options: { production: boolean; metricsToken?: string }): MetricsAccess =>
  options.metricsToken ? 'token' : options.production ? 'closed' : 'open';

/** Whether an Authorization header carries the metrics token (compared in constant time). */
export function metricsTokenPresented(authorization: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1]);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The answer to a scrape without the token: 401, saying how to authenticate (RFC 6750). */
export const METRICS_UNAUTHORIZED = {
  status: 401,
  headers: { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="metrics"', 'cache-control': 'no-store' },
  body: JSON.stringify({ error: 'unauthorized', error_description: 'send Authorization: Bearer <METRICS_TOKEN>' }),
} as const;
