/**
 * In production the server speaks to browsers and clients over https only, as Keycloak's "SSL required: all"
 * and Hydra without --dev do. A request that arrived over plain http (Koa's `ctx.secure`, which trusts
 * X-Forwarded-Proto only with PROXY=true) is refused with 403 and a reason instead of being served.
 *
 * Without this, plain http either leaked what it carries (client secrets, codes, bearer tokens) or failed
 * late: oidc-provider's cookies are Secure in production and Koa will not set one over http, so /auth
 * answered 500. The usual cause is a TLS-terminating proxy with PROXY unset or no X-Forwarded-Proto, which the
 * first refusal logs as a hint for the operator.
 *
 * Discovery and JWKS stay open over http (the health, readiness and metrics probes are answered before this):
 * they are public, and resource servers inside the network often fetch them from the instances directly.
 */
import type { Middleware } from 'koa';
import type { Logger } from '../logger.js';
import { DOCUMENT_PATHS } from './document-cache.js';

export function requireHttps(options: { proxy: boolean; logger: Logger }): Middleware {
  let hinted = false;
  return async (ctx, next) => {
    if (ctx.secure || DOCUMENT_PATHS.has(ctx.path)) return next();
    if (!hinted) {
      hinted = true;
      const hint = options.proxy
        ? 'the proxy in front did not send X-Forwarded-Proto: https'
        : 'if TLS ends at a proxy in front, set PROXY=true and have it send X-Forwarded-Proto: https';
      options.logger.warn({ path: ctx.path }, `refused a plain-http request (production answers over https only): ${hint}`);
    }
    ctx.status = 403;
    ctx.body = { error: 'invalid_request', error_description: 'HTTPS required: this server answers over https only' };
  };
}
