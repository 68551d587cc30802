/**
 * oidc-provider answers a client using a grant type it is not registered for with `invalid_request`, at the token
 * endpoint and at the device authorization endpoint; RFC 6749 §5.2 (and RFC 8628 §3.2, which refers to it)
 * names that case `unauthorized_client`, which is what relying-party libraries look for.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { DEVICE_CODE_GRANT } from '../clients/clients.js';

const NOT_ALLOWED = 'requested grant type is not allowed for this client';
const DEVICE_CODE_NOT_ALLOWED = `${DEVICE_CODE_GRANT} is not allowed for this client`;

export async function unauthorizedClientForGrantType(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  await next();
  const body = ctx.body as { error?: string; error_description?: string } | undefined;
  if (ctx.status !== 400 || body?.error !== 'invalid_request') return;
  const { route } = ctx.oidc ?? {};
  if ((route === 'token' && body.error_description === NOT_ALLOWED) || (route === 'device_authorization' && body.error_description === DEVICE_CODE_NOT_ALLOWED)) {
    ctx.body = { ...body, error: 'unauthorized_client' };
  }
}
