/**
 * Error codes as RFC 6749 §5.2 names them, where oidc-provider answers `invalid_request` instead:
 *
 * - a client using a grant type it is not registered for, at the token endpoint and at the device authorization
 *   endpoint (RFC 8628 §3.2 refers to §5.2): `unauthorized_client`, which relying-party libraries look for;
 * - a request to an endpoint that authenticates clients with no client authentication at all: `invalid_client`
 *   ("no client authentication included"), with 401 as for any failed client authentication.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { DEVICE_CODE_GRANT } from '../clients/clients.js';

const NOT_ALLOWED = 'requested grant type is not allowed for this client';
const DEVICE_CODE_NOT_ALLOWED = `${DEVICE_CODE_GRANT} is not allowed for this client`;
const NO_CLIENT_AUTHENTICATION = 'no client authentication mechanism provided';

type ErrorBody = { error?: string; error_description?: string };

export async function rfc6749ErrorCodes(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  await next();
  const body = ctx.body as ErrorBody | undefined;
  if (ctx.status !== 400 || body?.error !== 'invalid_request') return;
  const { route } = ctx.oidc ?? {};
  if ((route === 'token' && body.error_description === NOT_ALLOWED) || (route === 'device_authorization' && body.error_description === DEVICE_CODE_NOT_ALLOWED)) {
    ctx.body = { ...body, error: 'unauthorized_client' };
  } else if (body.error_description === NO_CLIENT_AUTHENTICATION) {
    ctx.status = 401;
    ctx.body = { ...body, error: 'invalid_client' };
  }
}
