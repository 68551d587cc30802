/**
 * Security headers on every response (helmet). The CSP allows only our own stylesheet and no script except the
 * hashed inline one oidc-provider adds to a form_post response (it appends the hash to this header). There is
 * deliberately no `form-action`: Chromium applies it to the redirect that follows a form post, and our login,
 * consent and logout forms end in a redirect to the client's registered URI.
 */
import type { Context, Middleware } from 'koa';
import helmet from 'koa-helmet';

/**
 * helmet's answer for our options is the same on every response, so it is recorded once, at start-up, and
 * replayed: one loop over a dozen headers instead of helmet's dozen middlewares per request. In a standalone
 * Koa app serving the cached discovery document, helmet added 3–8 µs to a 26–30 µs request. In the cluster
 * benchmark the difference was lost in the noise.
 */
export async function securityHeaders(options: { production: boolean }): Promise<Middleware> {
  const headers: [string, string | number | readonly string[]][] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => headers.push([name, value]),
    removeHeader: (name: string) => removed.push(name),
    getHeader: () => undefined,
  };
  await helmetFor(options)({ req: {}, res: recorder } as unknown as Context, async () => {});
  return async (ctx, next) => {
    for (const name of removed) ctx.res.removeHeader(name);
    for (const [name, value] of headers) ctx.res.setHeader(name, value);
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
