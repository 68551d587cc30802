/**
 * Security headers on every response (helmet). The CSP allows only our own stylesheet and no script except the
 * hashed inline one oidc-provider adds to a form_post response (it appends the hash to this header). There is
 * deliberately no `form-action`: Chromium applies it to the redirect that follows a form post, and our login,
 * consent and logout forms end in a redirect to the client's registered URI.
 *
 * The endpoints that only ever answer JSON (token, introspection, revocation, device authorization, userinfo,
 * discovery, JWKS) get the set OWASP's REST Security Cheat Sheet names for APIs instead: HSTS, nosniff, a CSP
 * that allows nothing and no framing. The rest of helmet's headers (referrer policy, COOP, DNS prefetching, IE
 * download options, Flash policies, the XSS auditor, origin-agent clusters) govern how a browser treats an HTML
 * page and what it loads, and a JSON answer loads nothing. They were 7 of a JWKS answer's 21 headers, on the
 * endpoints called most.
 */
import type { ServerResponse } from 'node:http';
import type { Context, Middleware } from 'koa';
import helmet from 'koa-helmet';

type Header = [string, string | number | readonly string[]];

/** Exact paths (oidc-provider's default routes) whose every answer is JSON, or a JWT for userinfo. */
const JSON_ONLY_PATHS = new Set([
  '/token',
  '/token/introspection',
  '/token/revocation',
  '/device/auth',
  '/me',
  '/jwks',
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
]);

/** Of helmet's headers, those that still mean something on a JSON answer. */
const KEPT_FOR_JSON = new Set(['strict-transport-security', 'x-content-type-options', 'x-frame-options']);
const JSON_CSP: Header = ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"];

/** Sets the security headers for a response to the given path, before anything else is written. */
export type SecurityHeaderWriter = (res: ServerResponse, path: string) => void;

/**
 * helmet's answer for our options is the same on every response, so it is recorded once, at start-up, and
 * replayed: one loop over a dozen headers instead of helmet's dozen middlewares per request. In a standalone
 * Koa app serving the cached discovery document, helmet added 3–8 µs to a 26–30 µs request. In the cluster
 * benchmark the difference was lost in the noise.
 */
export async function securityHeaderWriter(options: { production: boolean }): Promise<SecurityHeaderWriter> {
  const forPages: Header[] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader: (name: string, value: Header[1]) => forPages.push([name, value]),
    removeHeader: (name: string) => removed.push(name),
    getHeader: () => undefined,
  };
  await helmetFor(options)({ req: {}, res: recorder } as unknown as Context, async () => {});
  const forJson = [...forPages.filter(([name]) => KEPT_FOR_JSON.has(name.toLowerCase())), JSON_CSP];
  return (res, path) => {
    for (const name of removed) res.removeHeader(name);
    for (const [name, value] of JSON_ONLY_PATHS.has(path) ? forJson : forPages) res.setHeader(name, value);
  };
}

/** The middleware that gives every response passing through Koa its security headers. */
export function securityHeaders(write: SecurityHeaderWriter): Middleware {
  return async (ctx, next) => {
    write(ctx.res, ctx.path);
    await next();
  };
}

function helmetFor(options: { production: boolean }): Middleware {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        ...(options.production ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    // HSTS only where the issuer is https; on http://localhost it would pin the browser to https.
    strictTransportSecurity: options.production ? { maxAge: 31_536_000 } : false,
    referrerPolicy: { policy: 'no-referrer' },
    // Agrees with frame-ancestors 'none' for browsers that only know the older header.
    xFrameOptions: { action: 'deny' },
  });
}
