/**
 * Security headers on every response (helmet). The CSP allows only our own stylesheet and no script except the
 * hashed inline one oidc-provider adds to a form_post response (it appends the hash to this header). There is
 * deliberately no `form-action`: Chromium applies it to the redirect that follows a form post, and our login,
 * consent and logout forms end in a redirect to the client's registered URI.
 */
import type { Middleware } from 'koa';
import helmet from 'koa-helmet';

export function securityHeaders(options: { production: boolean }): Middleware {
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
