/**
 * The account page: what a signed-in person can do for themselves, as Keycloak's account console offers, without
 * asking an administrator. Signed in through /auth like any app (./sign-in.ts), with the same session.
 *
 *   GET  /account                          the page (or a sign-in first)
 *   GET  /account/callback                 the end of that sign-in (./sign-in.ts)
 *   POST /account/name                     the name apps are given (`name`), or none
 *   POST /account/password                 current password, new one twice → changed; other sessions ended if ticked
 *                                          (an account without one sets its first: ./first-password.ts)
 *   GET  /account/password/set-up          a fresh sign-in, to set a first password
 *   GET  /account/two-step/set-up          a sign-in that sets up an authenticator app (step-up), then the page
 *   POST /account/two-step/recovery-codes  a code from the app → new recovery codes, shown once
 *   POST /account/two-step/off             a code from the app → two-step verification removed (unless required)
 *   POST /account/two-step/replace         a code (or recovery code) → a new app set up in place of the old
 *                                          (./replace-app.ts)
 *   POST /account/sessions/end             another browser's session → signed out (back-channel logout to its apps)
 *   POST /account/apps/remove              an app's grant → removed, with every token issued under it
 *   POST /account/data                     everything held about the person, as a JSON file (./data-export.ts)
 *
 * and passkeys added and removed (./passkeys.ts); and, through links sent by mail, a forgotten password reset and the address confirmed (./email-link-pages.ts),
 * and the address changed (./email-change.ts).
 *
 * Every post carries a CSRF token bound to the login session, and every check of a password or code goes through
 * the sign-in's brute-force limits, so the page is no way around them. Changes are audited `by: self`.
 */
import { Router } from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { z } from 'zod';
import { changeUnlessReused } from '../accounts/password-history.js';
import { newPasswordFields } from '../accounts/passwords.js';
import type { SessionDirectory } from '../accounts/sessions.js';
import { MFA_ACR } from '../accounts/two-factor.js';
import { requestFacts } from '../audit/request-facts.js';
import { NotFoundError } from '../errors.js';
import { readForm } from '../http/read-form.js';
import { csrfTokenValid } from '../interaction/csrf.js';
import { PageError, pageErrors } from '../interaction/errors.js';
import type { InteractionDependencies } from '../interaction/routes.js';
import type { LockAdministration } from '../security/lock-administration.js';
import { hasOwnPassword } from '../accounts/users.js';
import { addEmailChangeRoutes } from './email-change.js';
import { setFirstPassword } from './first-password.js';
import { addEmailLinkPages } from './email-link-pages.js';
import { WRONG_PASSWORD, checkCode, checkCurrentPassword, currentPasswordField, refuse } from './re-authentication.js';
import { addAccountDeletionRoutes } from './account-deletion.js';
import { addDataExportRoutes } from './data-export.js';
import type { StoredAuditEvent } from '../audit/audit-log.js';
import { addPasskeyRoutes } from './passkeys.js';
import { addLinkedIdentityRoutes } from './linked-identities.js';
import { addReplaceAppRoutes } from './replace-app.js';
import { type AccountPageNotice, renderAccountPage, renderNewRecoveryCodes } from './page.js';
import { takeAWayIn } from './ways-in.js';
import { type SignedIn, signedInOf } from './signed-in.js';
import { AGAIN_FOR, type SignInPurpose, finishSignIn, startSignIn } from './sign-in.js';
import type { Database } from '../store/database.js';

/**
 * What the login pages get (src/interaction/routes.ts), with `users` and `sessions` whose changes are audited
 * `by: self`; the sessions it ends are told to their apps.
 */
export interface AccountDependencies extends InteractionDependencies {
  sessions: SessionDirectory;
  /** Lifts the sign-in lock of a user who reset their password, audited `by: self`. */
  locks: LockAdministration;
  /**
   * The account's most recent audit events (of one `type`, if given), newest first: "Download your data"
   * (./data-export.ts) and "Recent sign-ins" (./sign-in-activity.ts).
   */
  accountActivity: (accountId: string, limit: number, type?: string) => Promise<StoredAuditEvent[]>;
}

const passwordForm = z.object({
  current: currentPasswordField,
  ...newPasswordFields,
  /** "Sign out of my other sessions": sent only when ticked. */
  endOthers: z.string().max(16).optional(),
});
const removePasswordForm = z.object({ current: currentPasswordField, endOthers: passwordForm.shape.endOthers });
const NO_OTHER_WAY_IN = 'Add a passkey or link another sign-in first: without a password, that is how you will sign in.';
/** Empty: no name (apps then get none in `name`). */
const nameForm = z.object({ name: z.string('Enter your name.').trim().max(200, 'That name is too long: 200 characters at most.') });
const sessionForm = z.object({ session: z.string().min(1).max(200) });
const appForm = z.object({ grant: z.string().min(1).max(200) });

const WRONG_CODE = 'That code is not right. Enter the code your app shows now.';

/** The first sentence a refused form deserves. */
const refusal = (result: { error: z.ZodError }) => result.error.issues[0]?.message ?? 'The form was not complete.';

export function createAccountRoutes(deps: AccountDependencies): Middleware {
  const { config, views, logger } = deps;
  const router = new Router({ prefix: '/account' });
  const signedInNow = (ctx: Context) => signedInOf(ctx, { provider: deps.provider, users: deps.users, sessionMaxSeconds: config.ttl.sessionMax });
  const signIn = (ctx: Context, purpose: SignInPurpose, reauthenticate = false) =>
    startSignIn(ctx, { issuer: config.issuer, production: config.production, purpose, reauthenticate });

  /** The signed-in person, and for posts the form's CSRF token checked against their session. */
  const signedIn = async (ctx: Context, next: Next) => {
    const found = await signedInNow(ctx);
    if (!found) throw new PageError(401, 'You are not signed in to your account any more.', { href: '/account', label: 'Sign in to your account' });
    if (!csrfTokenValid(ctx.app.keys as string[], found.session.uid, (ctx.request.body as Record<string, unknown>)?.csrf, 'account')) {
      throw new PageError(403, 'The form expired or did not come from this site. Reload the page and try again.');
    }
    ctx.state.signedIn = found;
    return next();
  };
  const who = (ctx: Context) => ctx.state.signedIn as SignedIn;
  const done = (ctx: Context, notice: AccountPageNotice, anchor = '') => {
    ctx.status = 303;
    ctx.redirect(`/account?done=${notice}${anchor}`);
  };

  router.use(pageErrors(views, logger));
  addEmailLinkPages(router, deps, signedIn);
  addEmailChangeRoutes(router, deps, signedIn);
  addReplaceAppRoutes(router, deps, signedIn);
  addPasskeyRoutes(router, deps, signedIn);
  addLinkedIdentityRoutes(router, deps, { signedIn, signedInNow, done });
  addAccountDeletionRoutes(router, deps, signedIn);
  addDataExportRoutes(router, deps, signedIn);

  router.get('/', async (ctx) => {
    const found = await signedInNow(ctx);
    if (!found) return signIn(ctx, 'view');
    await renderAccountPage(ctx, deps, found, { notice: ctx.query.done });
  });

  router.get('/callback', (ctx) => finishSignIn(ctx, { provider: deps.provider, production: config.production }));

  router.get('/two-step/set-up', async (ctx) => {
    const found = await signedInNow(ctx);
    if (found?.user.totpEnrolledAt) return done(ctx, 'two-step-on', '#two-step');
    // A session that signed in with two steps is not asked for them again (step-up), even though an administrator
    // has since removed the app: only a fresh sign-in then leads to setting one up.
    const reauthenticate = found?.session.acr === MFA_ACR;
    signIn(ctx, 'two-step', reauthenticate);
  });

  // After a refused form the address bar shows its action; reloading it is a GET, which goes back to the page.
  router.get(['/name', '/password', '/password/remove', '/two-step/recovery-codes', '/two-step/off', '/sessions/end', '/apps/remove'], (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account');
  });

  router.post('/name', readForm, signedIn, async (ctx) => {
    const form = nameForm.safeParse(ctx.request.body);
    if (!form.success) return renderAccountPage(ctx, deps, who(ctx), { errors: { name: refusal(form) }, status: 400 });
    await deps.users.update(who(ctx).user.id, { name: form.data.name || null });
    done(ctx, 'name', '#name');
  });

  router.get('/password/set-up', (ctx) => signIn(ctx, 'password', true));
  // An account without a password changes how it signs in right after a sign-in (./re-authentication.ts).
  router.get('/sign-in-again/:section', (ctx) => {
    const section = AGAIN_FOR.find((name) => name === ctx.params.section);
    if (!section) throw new PageError(404, 'There is no such part of your account.', { href: '/account', label: 'Back to your account' });
    signIn(ctx, section, true);
  });

  router.post('/password', readForm, signedIn, async (ctx) => {
    const signedInAs = who(ctx);
    const { user, session } = signedInAs;
    if (!hasOwnPassword(user)) return setFirstPassword(ctx, deps, signedInAs, (at) => done(at, 'password-set', '#password'));
    const form = passwordForm.safeParse(ctx.request.body);
    if (!form.success) return renderAccountPage(ctx, deps, signedInAs, { errors: { password: refusal(form) }, status: 400 });
    const problem = await deps.users.newPasswordRefusal(form.data.password, form.data.repeat, user);
    if (problem) return renderAccountPage(ctx, deps, signedInAs, { errors: { password: problem }, status: 400 });
    const checked = await checkCurrentPassword(ctx, deps, form.data.current);
    if (!('passed' in checked)) return refuse(ctx, deps, checked, 'password', WRONG_PASSWORD);
    const change = await changeUnlessReused(deps.users.changePassword(user.id, form.data.password));
    if ('refusal' in change) return renderAccountPage(ctx, deps, signedInAs, { errors: { password: change.refusal }, status: 400 });
    if (form.data.endOthers === undefined) return done(ctx, 'password');
    await endOtherSessions(deps, user.id, session.uid);
    done(ctx, 'password-others');
  });

  // Going without a password, once the current one is given and another way in is left (./ways-in.ts).
  router.post('/password/remove', readForm, signedIn, async (ctx) => {
    const { user, session } = who(ctx);
    if (!hasOwnPassword(user)) return done(ctx, 'password-removed', '#password');
    const form = removePasswordForm.safeParse(ctx.request.body);
    if (!form.success) return renderAccountPage(ctx, deps, who(ctx), { errors: { password: refusal(form) }, status: 400 });
    const checked = await checkCurrentPassword(ctx, deps, form.data.current);
    if (!('passed' in checked)) return refuse(ctx, deps, checked, 'password', WRONG_PASSWORD);
    const remove = (trx: Database) => deps.users.removePassword(user.id, trx);
    if (!(await takeAWayIn(deps, user.id, { password: true }, remove))) return refuse(ctx, deps, { invalid: NO_OTHER_WAY_IN }, 'password', WRONG_PASSWORD);
    if (form.data.endOthers === undefined) return done(ctx, 'password-removed', '#password');
    await endOtherSessions(deps, user.id, session.uid);
    done(ctx, 'password-removed-others', '#password');
  });

  router.post('/two-step/recovery-codes', readForm, signedIn, async (ctx) => {
    const { user } = who(ctx);
    const checked = await checkCode(ctx, deps);
    if (!('passed' in checked)) return refuse(ctx, deps, checked, 'twoStep', WRONG_CODE);
    const codes = await deps.twoFactor.replaceRecoveryCodes(user.id);
    if (!codes) throw new PageError(409, 'Two-step verification was turned off meanwhile.', { href: '/account', label: 'Back to your account' });
    deps.audit.record({ type: 'user_recovery_codes_replaced', outcome: 'success', accountId: user.id, ...requestFacts(ctx), detail: { by: 'self' } });
    renderNewRecoveryCodes(ctx, deps, codes);
  });

  router.post('/two-step/off', readForm, signedIn, async (ctx) => {
    const { user } = who(ctx);
    if (deps.twoFactor.isRequired(user)) {
      return renderAccountPage(ctx, deps, who(ctx), { errors: { twoStep: 'Two-step verification is required for your account: it cannot be turned off.' }, status: 400 });
    }
    const checked = await checkCode(ctx, deps);
    if (!('passed' in checked)) return refuse(ctx, deps, checked, 'twoStep', WRONG_CODE);
    await deps.users.resetTwoFactor(user.id);
    done(ctx, 'two-step-off', '#two-step');
  });

  router.post('/sessions/end', readForm, signedIn, async (ctx) => {
    const { user, session } = who(ctx);
    const form = sessionForm.safeParse(ctx.request.body);
    if (!form.success) throw new PageError(400, 'The form did not say which session to sign out.');
    if (form.data.session === session.uid) throw new PageError(400, 'This is the session you are using: sign out with "Sign out" instead.', { href: '/account', label: 'Back to your account' });
    await deps.sessions.end(user.id, form.data.session).catch(ignoreNotFound);
    done(ctx, 'session-ended', '#sessions');
  });

  router.post('/apps/remove', readForm, signedIn, async (ctx) => {
    const { user } = who(ctx);
    const form = appForm.safeParse(ctx.request.body);
    if (!form.success) throw new PageError(400, 'The form did not say which app to remove.');
    await deps.users.revokeGrant(user.id, form.data.grant).catch(ignoreNotFound);
    done(ctx, 'app-removed', '#apps');
  });

  return router.routes() as unknown as Middleware;
}

/** A session or app already gone (another tab, an administrator) is what was asked for. */
function ignoreNotFound(error: unknown): void {
  if (!(error instanceof NotFoundError)) throw error;
}


/** "Sign out of my other sessions" with a new password: each other browser signs in again. */
async function endOtherSessions(deps: AccountDependencies, accountId: string, currentUid: string): Promise<void> {
  const others = (await deps.sessions.list(accountId)).filter((session) => session.uid !== currentUid);
  for (const other of others) await deps.sessions.end(accountId, other.uid).catch(ignoreNotFound);
}
