/**
 * patches/oidc-provider+9.13.3.patch is applied (npm's postinstall runs patch-package): every request's
 * `ctx.oidc` comes from one getter shared by all requests, not from a closure made per request. Without the
 * patch each request's objects survived V8's young-generation collections until the next full GC (see the
 * patch). Behaviour must not change: one OIDCContext per request, made on first use, for that request.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';

describe('the oidc-provider patch', () => {
  let server: Server;
  let base: string;
  const seen: { getter: unknown; context: unknown; again: unknown; route: unknown }[] = [];

  beforeAll(async () => {
    const provider = new Provider('http://127.0.0.1', { clients: [] });
    provider.use(async (ctx, next) => {
      await next();
      const oidcCtx = ctx as KoaContextWithOIDC;
      if (!Object.hasOwn(ctx, 'oidc')) return;
      seen.push({
        getter: Object.getOwnPropertyDescriptor(ctx, 'oidc')?.get,
        context: oidcCtx.oidc,
        again: oidcCtx.oidc,
        route: oidcCtx.oidc.route,
      });
    });
    server = provider.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  test('every request reads ctx.oidc through the same getter, and gets its own context', async () => {
    for (const path of ['/jwks', '/jwks', '/.well-known/openid-configuration']) {
      const response = await fetch(`${base}${path}`);
      expect(response.status).toBe(200);
    }
    expect(seen).toHaveLength(3);
    const [first, second, third] = seen;
    expect(typeof first?.getter).toBe('function');
    expect(second?.getter).toBe(first?.getter);
    expect(third?.getter).toBe(first?.getter);
    // Made once per request and kept for it; never shared between requests.
    for (const request of seen) expect(request.again).toBe(request.context);
    expect(second?.context).not.toBe(first?.context);
    expect(seen.map((request) => request.route)).toEqual(['jwks', 'jwks', 'discovery']);
  });
});
