/**
 * Discovery without empty lists: oidc-provider publishes `request_object_encryption_alg_values_supported: []`
 * once encryption is on (for responses, src/clients/response-encryption.ts) although nothing is ever encrypted to
 * us. OpenID Connect Discovery and RFC 8414 say what is not supported by leaving the member out, and some
 * relying-party libraries take an empty list for "any".
 */
import type { KoaContextWithOIDC } from 'oidc-provider';

export async function omitEmptyDiscoveryLists(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
  await next();
  if (ctx.oidc?.route !== 'discovery' || ctx.status !== 200 || typeof ctx.body !== 'object' || ctx.body === null) return;
  const body = ctx.body as Record<string, unknown>;
  if (!Object.values(body).some(isEmptyList)) return;
  ctx.body = Object.fromEntries(Object.entries(body).filter(([, value]) => !isEmptyList(value)));
}

const isEmptyList = (value: unknown) => Array.isArray(value) && value.length === 0;
