/**
 * oidc-provider answers a client using a grant type it is not registered for with `invalid_request`; RFC 6749
 * §5.2 names that case `unauthorized_client`, which is what relying-party libraries look for.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';

const NOT_ALLOWED = 'requested grant type is not allowed for this client';

export async function unauthorizedClientForGrantType(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  await next();
  const body = ctx.body as { error?: string; error_description?: string } | undefined;
  if (ctx.oidc?.route === 'token' && ctx.status === 400 && body?.error === 'invalid_request' && body.error_description === NOT_ALLOWED) {
    ctx.body = { ...body, error: 'unauthorized_client' };
  }
}
