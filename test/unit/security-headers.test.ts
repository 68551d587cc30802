/**
 * The security headers every response carries (helmet's, recorded once at start-up and replayed), in production
 * and in development, and unaffected by what an earlier response did to its own copy; the endpoints that answer
 * only JSON get the short set for APIs.
 */
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { securityHeaderWriter, securityHeaders } from '../../src/http/security-headers.js';

async function headersOf(production: boolean, requests = 1, path = '/'): Promise<Headers[]> {
  const app = new Koa();
  app.use(securityHeaders(await securityHeaderWriter({ production })));
  app.use((ctx) => {
    // As oidc-provider does for a form_post answer: it extends the CSP of this one response.
    ctx.set('Content-Security-Policy', `${ctx.response.get('Content-Security-Policy')};script-src 'sha256-x'`);
    ctx.body = { ok: true };
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const answers: Headers[] = [];
    for (let index = 0; index < requests; index++) answers.push((await fetch(`http://127.0.0.1:${port}${path}`)).headers);
    return answers;
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

const CSP = "default-src 'self';script-src 'self';style-src 'self';img-src 'self' data:;object-src 'none';base-uri 'none';frame-ancestors 'none'";

test('production: HSTS, upgrade-insecure-requests and the rest, on every response afresh', async () => {
  const answers = await headersOf(true, 2);
  for (const headers of answers) {
    expect(headers.get('content-security-policy')).toBe(`${CSP};upgrade-insecure-requests;script-src 'sha256-x'`);
    expect(headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expect(headers.get('x-frame-options')).toBe('DENY');
    expect(headers.get('referrer-policy')).toBe('no-referrer');
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(headers.get('x-permitted-cross-domain-policies')).toBe('none');
  }
});

test('development: no HSTS and no upgrade to https', async () => {
  const [headers] = await headersOf(false);
  expect(headers?.get('content-security-policy')).toBe(`${CSP};script-src 'sha256-x'`);
  expect(headers?.get('strict-transport-security')).toBeNull();
  expect(headers?.get('x-frame-options')).toBe('DENY');
});

test('JSON-only endpoints: HSTS, nosniff, no framing and a CSP that allows nothing; no page-only headers', async () => {
  for (const path of ['/token', '/token/introspection', '/me', '/jwks', '/.well-known/openid-configuration']) {
    const [headers] = await headersOf(true, 1, path);
    expect(headers?.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expect(headers?.get('x-content-type-options')).toBe('nosniff');
    expect(headers?.get('x-frame-options')).toBe('DENY');
    expect(headers?.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none';script-src 'sha256-x'");
    for (const pageOnly of ['referrer-policy', 'cross-origin-opener-policy', 'x-dns-prefetch-control', 'x-xss-protection', 'x-download-options']) {
      expect(headers?.get(pageOnly)).toBeNull();
    }
  }
  // Only exact paths: a page under a similar path keeps the full set.
  const [page] = await headersOf(true, 1, '/token/other');
  expect(page?.get('referrer-policy')).toBe('no-referrer');
});
