/**
 * Feeds the audit log from oidc-provider's events, so that protocol outcomes are recorded without code in the
 * protocol paths: tokens issued, refresh-token reuse, client-authentication failures, revoked grants, logouts.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import type { AuditEvent, AuditSink } from './audit-log.js';
import { requestFacts } from './request-facts.js';

/** error_detail says what exactly was wrong; it is not sent to clients. */
type OidcError = { error?: string; error_description?: string; error_detail?: string; status?: number };

/**
 * A locked client refused before its secret was compared (src/security/client-auth-limits.ts, thrown from
 * compareClientSecret for client_secret_post). Not a failed authentication: counting it would make the same
 * refusal a failure or not by auth method, since with HTTP Basic it is answered before oidc-provider runs.
 */
const isLockRefusal = (error: OidcError) => error.error === 'invalid_client' && error.status === 429;

function facts(ctx: KoaContextWithOIDC): Pick<AuditEvent, 'clientId' | 'accountId' | 'ip' | 'userAgent' | 'requestId'> {
  const { entities } = ctx.oidc ?? {};
  return {
    clientId: ctx.oidc?.client?.clientId ?? (ctx.oidc?.params?.client_id as string | undefined) ?? null,
    accountId: entities?.Account?.accountId ?? entities?.Grant?.accountId ?? ctx.oidc?.session?.accountId ?? null,
    ...requestFacts(ctx),
  };
}

export function auditProviderEvents(provider: Provider, audit: AuditSink): void {
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    audit.record({ type: 'token_issued', outcome: 'success', ...facts(ctx), detail: { grantType: ctx.oidc.params?.grant_type } });
  });

  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: OidcError) => {
    const grantType = ctx.oidc?.params?.grant_type;
    if (isLockRefusal(error)) return;
    if (error.error === 'invalid_client') {
      audit.record({ type: 'client_auth_failed', outcome: 'failure', ...facts(ctx), detail: { endpoint: 'token', reason: error.error_detail ?? error.error_description } });
    } else if (error.error_detail === 'refresh token already used') {
      // A rotated refresh token came back: the client or an attacker holds a stolen copy. The grant is revoked.
      const grantId = ctx.oidc.entities?.RefreshToken?.grantId;
      audit.record({ type: 'refresh_reuse_detected', outcome: 'failure', ...facts(ctx), detail: { grantId, grantRevoked: true } });
    } else {
      audit.record({ type: 'token_refused', outcome: 'failure', ...facts(ctx), detail: { grantType, error: error.error, reason: error.error_detail ?? error.error_description } });
    }
  });

  const clientAuthFailure = (endpoint: string) => (ctx: KoaContextWithOIDC, error: OidcError) => {
    if (error.error !== 'invalid_client' || isLockRefusal(error)) return;
    audit.record({ type: 'client_auth_failed', outcome: 'failure', ...facts(ctx), detail: { endpoint, reason: error.error_detail ?? error.error_description } });
  };
  provider.on('introspection.error', clientAuthFailure('introspection'));
  provider.on('revocation.error', clientAuthFailure('revocation'));
  provider.on('pushed_authorization_request.error', clientAuthFailure('pushed_authorization_request'));
  provider.on('device_authorization.error', clientAuthFailure('device_authorization'));

  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
    audit.record({ type: 'grant_revoked', outcome: 'success', ...facts(ctx), detail: { grantId, route: ctx.oidc?.route } });
  });

  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    audit.record({ type: 'logout', outcome: 'success', ...facts(ctx) });
  });

  // The person approved a device's request at /device (RFC 8628); the device collects its tokens next.
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc?.route !== 'device_resume') return;
    audit.record({ type: 'device_code_approved', outcome: 'success', ...facts(ctx), detail: { scope: ctx.oidc.entities?.DeviceCode?.scope } });
  });

  provider.on('authorization.error', (ctx: KoaContextWithOIDC, error: OidcError) => {
    audit.record({ type: 'authorization_refused', outcome: 'failure', ...facts(ctx), detail: { error: error.error, reason: error.error_detail ?? error.error_description } });
  });
}

/** Revocation succeeds silently in the library; record it from the response. */
export function auditRevocations(audit: AuditSink) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    if (ctx.oidc?.route === 'revocation' && ctx.status === 200) {
      audit.record({ type: 'token_revoked', outcome: 'success', ...facts(ctx), detail: { tokenTypeHint: ctx.oidc.params?.token_type_hint } });
    }
  };
}
