/**
 * "Download your data" (GDPR Articles 15 and 20: the right of access and to data portability): the signed-in
 * person gets, as one JSON file, what this server holds about them: the account with all its attributes (not only
 * those apps are given), their two-step verification and passkeys (never a secret or a key), the sign-ins linked
 * from other providers, their sessions, the apps with access and the recent activity the audit log holds for the
 * account. A POST with the page's CSRF token, as the file is the person's and nobody else's to fetch; audited.
 *
 *   POST /account/data   → account-data-<date>.json
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { StoredAuditEvent } from '../audit/audit-log.js';
import { requestFacts } from '../audit/request-facts.js';
import { readForm } from '../http/read-form.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';

/** The account's most recent audit events the file carries. */
export const EXPORTED_EVENTS = 1000;

/** What the file says; dates as ISO 8601 (JSON.stringify writes them so). */
async function accountData(deps: AccountDependencies, { user }: SignedIn) {
  const [passkeys, linked, sessions, grants, codesLeft, events] = await Promise.all([
    deps.passkeys.available ? deps.passkeys.list(user.id) : [],
    deps.linkedIdentities.listFor(user.id),
    deps.sessions.list(user.id),
    deps.users.listGrants(user.id),
    user.totpEnrolledAt ? deps.twoFactor.recoveryCodesLeft(user.id) : 0,
    deps.accountActivity(user.id, EXPORTED_EVENTS),
  ]);
  const appName = async (clientId: string | null) => (clientId ? ((await deps.catalog.client(clientId))?.name ?? clientId) : null);
  return {
    exportedAt: new Date(),
    issuer: deps.config.issuer,
    account: {
      id: user.id,
      email: user.email,
      emailVerified: user.emailVerified,
      name: user.name,
      roles: user.roles,
      groups: user.groups,
      attributes: user.attributes,
      createdAt: user.createdAt,
      updatedAt: user.updatedAt,
      passwordChangedAt: user.passwordChangedAt,
      termsOfServiceAccepted: user.termsAccepted,
      twoStepVerification: { enabled: user.totpEnrolledAt !== null, setUpAt: user.totpEnrolledAt, recoveryCodesLeft: codesLeft },
    },
    passkeys: passkeys.map(({ name, authenticator, backedUp, createdAt, lastUsedAt }) => ({ name, authenticator, backedUp, createdAt, lastUsedAt })),
    linkedSignIns: linked.map(({ provider, subject, email, createdAt, lastUsedAt }) => ({ provider, subject, email, linkedAt: createdAt, lastUsedAt })),
    sessions: await Promise.all(
      sessions.map(async ({ signedInAt, expiresAt, remembered, clients, amr }) => ({ signedInAt, expiresAt, remembered, signedInWith: amr, apps: await Promise.all(clients.map(appName)) })),
    ),
    apps: await Promise.all(
      grants.map(async ({ clientId, scopes, resources, createdAt, expiresAt }) => ({ app: await appName(clientId), clientId, scopes, apis: resources, grantedAt: createdAt, expiresAt })),
    ),
    activity: events.map(activityEntry),
  };
}

/** An audit event as the person reads it: what, when, from where, through which app. */
const activityEntry = (event: StoredAuditEvent) => ({
  at: event.at,
  event: event.type,
  outcome: event.outcome,
  app: event.clientId,
  ip: event.ip,
  userAgent: event.userAgent,
  detail: event.detail,
});

const fileDate = (date: Date) => date.toISOString().slice(0, 10);

export function addDataExportRoutes(router: Router, deps: AccountDependencies, signedIn: Middleware): void {
  router.post('/data', readForm, signedIn, async (ctx: Context) => {
    const who = ctx.state.signedIn as SignedIn;
    const data = await accountData(deps, who);
    deps.audit.record({ type: 'account_data_exported', outcome: 'success', accountId: who.user.id, ...requestFacts(ctx), detail: { by: 'self' } });
    ctx.set('Content-Disposition', `attachment; filename="account-data-${fileDate(data.exportedAt)}.json"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/json';
    ctx.body = `${JSON.stringify(data, null, 2)}\n`;
  });
  router.get('/data', (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account#data');
  });
}
