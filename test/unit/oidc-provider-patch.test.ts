/**
 * patches/oidc-provider+9.13.3.patch is applied (npm's postinstall runs patch-package), and changes how the
 * library works, not what it answers:
 * - every request's `ctx.oidc` comes from one getter shared by all requests, not from a closure made per request
 *   (without it each request's objects survived V8's young-generation collections until the next full GC);
 *   still one OIDCContext per request, made on first use, for that request;
 * - introspection and revocation no longer try to decode an opaque token as a JWT (which threw and caught a
 *   TypeError per request); a JWT is still refused with unsupported_token_type.
 * Each test fails when its part of the patch is missing.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';

const CLIENT = { client_id: 'patch-test', client_secret: 'patch-test-secret' };
const basic = `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}`;

describe('the oidc-provider patch', () => {
  let server: Server;
  let base: string;
  const seen: { getter: unknown; context: unknown; again: unknown; route: unknown }[] = [];

  beforeAll(async () => {
    const provider = new Provider('http://127.0.0.1', {
      clients: [{ ...CLIENT, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }],
      features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true }, introspection: { enabled: true }, revocation: { enabled: true } },
    });
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

  const post = (path: string, body: string) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body });

  test('every request reads ctx.oidc through the same getter, and gets its own context', async () => {
    seen.length = 0;
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

  test('an opaque token is introspected and revoked without a TypeError thrown on the way', async () => {
    const issued = (await (await post('/token', 'grant_type=client_credentials')).json()) as { access_token: string };
    expect(issued.access_token).not.toContain('.');

    // jose throws a TypeError for a token that is not a JWT; the unpatched library provoked one per request.
    const Original = globalThis.TypeError;
    let constructed = 0;
    globalThis.TypeError = class CountedTypeError extends Original {
      constructor(...args: ConstructorParameters<typeof Original>) {
        super(...args);
        constructed += 1;
      }
    } as typeof TypeError;
    let introspected: { active?: boolean };
    let revoked: Response;
    try {
      introspected = (await (await post('/token/introspection', `token=${issued.access_token}`)).json()) as { active?: boolean };
      revoked = await post('/token/revocation', `token=${issued.access_token}`);
    } finally {
      globalThis.TypeError = Original;
    }
    expect(introspected.active).toBe(true);
    expect(revoked.status).toBe(200);
    expect(constructed).toBe(0);
    const after = (await (await post('/token/introspection', `token=${issued.access_token}`)).json()) as { active?: boolean };
    expect(after.active).toBe(false);
  });

  test('a JWT is still refused at introspection and revocation', async () => {
    const jwt = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.c2ln`;
    for (const path of ['/token/introspection', '/token/revocation']) {
      const response = await post(path, `token=${jwt}`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe('unsupported_token_type');
    }
  });
});
