/**
 * Guessing device codes. A user code is short enough to type (34 bits), so the page that takes it must limit how
 * many a browser may try (RFC 8628 §5.1): every code entered at /device that matches no live device request counts
 * against the address's sign-in limit (LOGIN_MAX_FAILURES_PER_IP, shared with wrong passwords, since both are
 * guesses made from one address), and a locked address is refused before any code is looked up. `ips unlock`
 * lifts the lock like any other.
 *
 * The device pages (src/interaction/device-pages.ts) say what was wrong with the code in `ctx.state.userCodeProblem`.
 */
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AuditSink } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import type { UserCodeProblem } from '../interaction/device-pages.js';
import type { SecurityLimits } from './limits.js';

/** oidc-provider's code_verification route (the `verification_uri`). */
const CODE_ENTRY_PATH = /\/device$/;

/** A code that reached no live device request: mistyped, guessed, or kept past its use. */
const GUESSES: ReadonlySet<UserCodeProblem> = new Set<UserCodeProblem>(['unknown', 'expired', 'used']);

export function userCodeGuard(
  limits: SecurityLimits,
  audit: AuditSink,
  refuse: (ctx: KoaContextWithOIDC, waitMs: number) => void,
): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || !CODE_ENTRY_PATH.test(ctx.path)) return next();
    const oidcCtx = ctx as unknown as KoaContextWithOIDC;
    const locked = await limits.loginByIp.lockedFor(ctx.ip);
    if (locked > 0) {
      audit.record({ type: 'user_code_rejected', outcome: 'failure', ...requestFacts(ctx), detail: { reason: 'locked' } });
      refuse(oidcCtx, locked);
      return;
    }
    await next();
    const problem = ctx.state.userCodeProblem as UserCodeProblem | undefined;
    const clientId = oidcCtx.oidc?.entities?.DeviceCode?.clientId;
    if (problem === 'cancelled' && clientId) {
      audit.record({ type: 'device_code_denied', outcome: 'failure', clientId, ...requestFacts(ctx) });
    }
    if (!problem || !GUESSES.has(problem)) return;
    audit.record({ type: 'user_code_rejected', outcome: 'failure', clientId, ...requestFacts(ctx), detail: { reason: problem } });
    const lock = await limits.loginByIp.fail(ctx.ip);
    if (lock > 0) {
      audit.record({ type: 'sign_in_locked', outcome: 'failure', ...requestFacts(ctx), detail: { by: 'ip', via: 'device_code', lockSeconds: Math.ceil(lock / 1000) } });
      refuse(oidcCtx, lock);
    }
  };
}
