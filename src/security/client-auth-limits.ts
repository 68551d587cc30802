/**
 * Brute-force limits on client authentication wherever a client authenticates (the token, introspection,
 * revocation, pushed authorization request and device authorization endpoints): failures are counted per
 * client_id and per IP, and a locked client or IP gets 429 with Retry-After until the lock ends,
 * before its secret is compared. (Sign-in limits are in src/interaction/routes.ts.)
 *
 * A locked IP refuses only requests that present a client secret, the thing being guessed. A public client (an
 * SPA or app behind the same NAT as a misconfigured service) presents none and keeps exchanging codes and
 * refreshing; private_key_jwt cannot be guessed either. Failures of any kind still count.
 */
import type { Middleware } from 'koa';
import Provider, { errors } from 'oidc-provider';
import type { AuditSink } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import type { SecurityLimits } from './limits.js';
import { describeWait } from './failure-limiter.js';

/** The endpoints at which clients authenticate, by path (oidc-provider's routes), as client_auth_failed names them. */
const CLIENT_AUTH_ENDPOINTS = new Map([
  ['/token', 'token'],
  ['/token/introspection', 'introspection'],
  ['/token/revocation', 'revocation'],
  ['/request', 'pushed_authorization_request'],
  ['/device/auth', 'device_authorization'],
]);

/** The client_id of an HTTP Basic header, when there is one (RFC 6749 §2.3.1: form-encoded inside). */
function basicClientId(header: string): string | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

export class TooManyClientAuthFailures extends errors.OIDCProviderError {
  constructor(readonly retryAfterMs: number) {
    super(429, 'invalid_client');
    Object.assign(this, { error_description: `too many failed client authentications; retry in ${describeWait(retryAfterMs)}` });
  }
}

export function clientAuthLimits(limits: SecurityLimits, audit: AuditSink): Middleware {
  return async (ctx, next) => {
    const endpoint = CLIENT_AUTH_ENDPOINTS.get(ctx.path);
    if (ctx.method !== 'POST' || !endpoint) return next();
    const fromHeader = basicClientId(ctx.get('authorization'));
    // A secret in the body is checked in compareClientSecret, once oidc-provider has read the body.
    const locked = fromHeader ? await lockedFor(limits, fromHeader, ctx.ip) : 0;
    // The client named in the header is checked; compareClientSecret need not ask the store again.
    if (fromHeader) ctx.state.clientLockChecked = fromHeader;
    if (locked > 0) {
      ctx.status = 429;
      ctx.set('Retry-After', String(Math.ceil(locked / 1000)));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'invalid_client', error_description: `too many failed client authentications; retry in ${describeWait(locked)}` };
      return;
    }
    await next();
    const clientId = ctx.oidc?.client?.clientId ?? (ctx.oidc?.params?.client_id as string | undefined) ?? fromHeader;
    const failed = ctx.status === 401 && (ctx.body as { error?: string } | undefined)?.error === 'invalid_client';
    if (failed) {
      const [ipLock, clientLock] = await Promise.all([limits.clientAuthByIp.fail(ctx.ip), clientId ? limits.clientAuthByClient.fail(clientId) : 0]);
      // The operator's answer to "why does this service get 429?": which lock, from where, for how long.
      const locked = (by: 'client' | 'ip', ms: number) =>
        audit.record({
          type: 'client_auth_locked',
          outcome: 'failure',
          clientId,
          ...requestFacts(ctx),
          detail: { by, lockSeconds: Math.ceil(ms / 1000), endpoint },
        });
      if (clientLock > 0) locked('client', clientLock);
      if (ipLock > 0) locked('ip', ipLock);
    } else if (ctx.status === 429) {
      const retryAfter = (ctx.state.clientAuthRetryAfterMs as number | undefined) ?? 60_000;
      ctx.set('Retry-After', String(Math.ceil(retryAfter / 1000)));
    }
  };
}

/** How long the client or the IP stays locked, in ms; 0 when neither is. */
async function lockedFor(limits: SecurityLimits, clientId: string, ip: string | undefined): Promise<number> {
  const [client, address] = await Promise.all([limits.clientAuthByClient.lockedFor(clientId), ip ? limits.clientAuthByIp.lockedFor(ip) : 0]);
  return Math.max(client, address);
}

/**
 * The check for secrets sent in the body (client_secret_post): oidc-provider calls compareClientSecret once it
 * knows the client, and a locked client or IP is refused there, before the comparison.
 */
export async function assertClientNotLocked(limits: SecurityLimits, clientId: string): Promise<void> {
  const ctx = Provider.ctx;
  if (ctx?.state.clientLockChecked === clientId) return;
  const locked = await lockedFor(limits, clientId, ctx?.ip);
  if (locked === 0) return;
  if (ctx) ctx.state.clientAuthRetryAfterMs = locked;
  throw new TooManyClientAuthFailures(locked);
}
