/** Where a request came from, as the audit log records it. */
import type { Context } from 'koa';

export function requestFacts(ctx: Pick<Context, 'ip' | 'get' | 'state'>) {
  return { ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null, requestId: (ctx.state?.requestId as string | undefined) ?? null };
}
