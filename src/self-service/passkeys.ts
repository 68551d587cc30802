/**
 * Passkeys on the account page (src/accounts/passkeys.ts):
 *
 *   POST /account/passkeys/options  the current password (or a recent sign-in: ./re-authentication.ts) → the
 *                                   options for navigator.credentials.create() and their challenge, sealed for
 *                                   this session (JSON; refusals as `{error}`)
 *   POST /account/passkeys/add      the browser's new credential, the sealed challenge, a name → kept
 *   POST /account/passkeys/rename   one of them, a new name → renamed
 *   POST /account/passkeys/remove   one of them and the current password → removed, unless it is the account's
 *                                   last way in (./ways-in.ts)
 *
 * The page's script (views/assets/passkeys.js) asks for the options, runs the browser's ceremony and posts the
 * answer as a form. The password is asked for before the ceremony, not after it, so that a wrong one does not
 * leave a passkey on the authenticator that the server never kept; it is checked under the sign-in's brute-force
 * limits. A session taken over could otherwise add its own passkey and keep the account for good; and each passkey
 * added is told to the account's address by mail, where the server sends mail. Removing one asks for the password
 * too, as turning off the authenticator app asks for its code: a session left open is no way to take a person's
 * way in away from them.
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { MAX_PASSKEYS_PER_USER, NO_PASSKEY, newChallenge, sealChallenge, unsealChallenge } from '../accounts/passkeys.js';
import { requestFacts } from '../audit/request-facts.js';
import { passkeyAddedNotice } from '../mail/messages.js';
import { readForm } from '../http/read-form.js';
import { PageError } from '../interaction/errors.js';
import { describeWait } from '../security/failure-limiter.js';
import { renderAccountPage } from './page.js';
import { SIGN_IN_AGAIN, WRONG_PASSWORD, checkOwner, currentPasswordField, refuse } from './re-authentication.js';
import { ONLY_WAY_IN, takeAWayIn } from './ways-in.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';
import type { Database } from '../store/database.js';

const optionsForm = z.object({
  current: currentPasswordField.optional(),
});

const addForm = z.object({
  credential: z.string().min(1).max(64 * 1024),
  challenge: z.string().min(1).max(200),
  /** Empty: the authenticator's name, or "Passkey" (src/accounts/passkeys.ts). */
  name: z.string().trim().max(100, 'That name is too long: 100 characters at most.').optional(),
});

const removeForm = z.object({ passkey: z.string().min(1).max(1400), current: currentPasswordField.optional() });
const renameForm = z.object({
  passkey: z.string().min(1).max(1400),
  name: z.string('Enter a name.').trim().min(1, 'Enter a name.').max(100, 'That name is too long: 100 characters at most.'),
});

const TOO_LATE = 'Adding the passkey took too long, or was started in another session. Try again.';

/** What a sealed challenge is bound to: this session of this user, so it serves no other. */
const bindingOf = ({ user, session }: SignedIn) => `${session.uid}:${user.id}`;

export function addPasskeyRoutes(router: Router, deps: AccountDependencies, signedIn: Middleware): void {
  const { passkeys } = deps;
  const refuseJson = (ctx: Context, status: number, error: string) => {
    ctx.status = status;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error };
  };
  const available: Middleware = async (_ctx, next) => {
    if (!passkeys.available) throw new PageError(404, 'Passkeys are not available on this server.', { href: '/account', label: 'Back to your account' });
    return next();
  };

  router.post('/passkeys/options', readForm, available, signedIn, async (ctx) => {
    const signedInAs = ctx.state.signedIn as SignedIn;
    const { user } = signedInAs;
    const form = optionsForm.safeParse(ctx.request.body);
    if (!form.success) return refuseJson(ctx, 400, form.error.issues[0]?.message ?? 'Enter your current password.');
    const checked = await checkOwner(ctx, deps, form.data.current);
    if ('signInAgain' in checked) return refuseJson(ctx, 403, SIGN_IN_AGAIN);
    if ('invalid' in checked) return refuseJson(ctx, 400, checked.invalid);
    if ('lockedMs' in checked) {
      ctx.set('Retry-After', String(Math.ceil(checked.lockedMs / 1000)));
      return refuseJson(ctx, 429, `Too many wrong attempts. Try again in ${describeWait(checked.lockedMs)}.`);
    }
    if ('rejected' in checked) return refuseJson(ctx, 400, WRONG_PASSWORD);
    if ((await passkeys.list(user.id)).length >= MAX_PASSKEYS_PER_USER) {
      return refuseJson(ctx, 400, `You have ${MAX_PASSKEYS_PER_USER} passkeys, the most an account can have. Remove one first.`);
    }
    const challenge = newChallenge();
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      options: await passkeys.creationOptions(user, challenge),
      challenge: sealChallenge(ctx.app.keys as string[], bindingOf(signedInAs), challenge),
    };
  });

  router.post('/passkeys/add', readForm, available, signedIn, async (ctx) => {
    const signedInAs = ctx.state.signedIn as SignedIn;
    const { user } = signedInAs;
    const refuse = (error: string) => renderAccountPage(ctx, deps, signedInAs, { errors: { passkeys: error }, status: 400 });
    const form = addForm.safeParse(ctx.request.body);
    if (!form.success) {
      const issue = form.error.issues[0];
      return refuse(issue?.path[0] === 'name' ? issue.message : issue?.path[0] === 'challenge' ? TOO_LATE : NO_PASSKEY);
    }
    const challenge = unsealChallenge(ctx.app.keys as string[], bindingOf(signedInAs), form.data.challenge);
    if (!challenge) return refuse(TOO_LATE);
    const added = await passkeys.register(user, { credential: form.data.credential, challenge, name: form.data.name });
    if ('refused' in added) {
      deps.audit.record({ type: 'passkey_added', outcome: 'failure', accountId: user.id, ...requestFacts(ctx), detail: { by: 'self', reason: added.reason } });
      return refuse(added.refused);
    }
    deps.audit.record({
      type: 'passkey_added',
      outcome: 'success',
      accountId: user.id,
      ...requestFacts(ctx),
      detail: { by: 'self', passkey: added.name, synced: added.backedUp, authenticator: added.authenticator },
    });
    const notice = passkeyAddedNotice({ to: user.email, issuer: deps.config.issuer, passkey: added.name });
    deps.outbox?.post(async () => ({ ...notice, kind: 'passkey_added', accountId: user.id }));
    ctx.status = 303;
    ctx.redirect('/account?done=passkey-added#passkeys');
  });

  router.post('/passkeys/rename', readForm, signedIn, async (ctx) => {
    const signedInAs = ctx.state.signedIn as SignedIn;
    const form = renameForm.safeParse(ctx.request.body);
    if (!form.success) {
      const issue = form.error.issues[0];
      if (issue?.path[0] === 'name') return renderAccountPage(ctx, deps, signedInAs, { errors: { passkeys: issue.message }, status: 400 });
      throw new PageError(400, 'The form did not say which passkey to rename.', { href: '/account#passkeys', label: 'Back to your account' });
    }
    // Gone already (another tab, an administrator): nothing to rename, and the page shows what is left.
    await passkeys.rename(signedInAs.user.id, form.data.passkey, form.data.name);
    ctx.status = 303;
    ctx.redirect('/account?done=passkey-renamed#passkeys');
  });

  router.post('/passkeys/remove', readForm, signedIn, async (ctx) => {
    const { user } = ctx.state.signedIn as SignedIn;
    const form = removeForm.safeParse(ctx.request.body);
    if (!form.success) {
      const issue = form.error.issues[0];
      if (issue?.path[0] === 'current') return refuse(ctx, deps, { invalid: issue.message }, 'passkeys', WRONG_PASSWORD);
      throw new PageError(400, 'The form did not say which passkey to remove.', { href: '/account#passkeys', label: 'Back to your account' });
    }
    const checked = await checkOwner(ctx, deps, form.data.current);
    if (!('passed' in checked)) return refuse(ctx, deps, checked, 'passkeys', WRONG_PASSWORD);
    // Gone already (another tab, an administrator) is what was asked for.
    const remove = (trx: Database) => passkeys.remove(user.id, form.data.passkey, 'self', trx);
    if (!(await takeAWayIn(deps, user.id, { passkey: form.data.passkey }, remove))) return refuse(ctx, deps, { invalid: ONLY_WAY_IN }, 'passkeys', WRONG_PASSWORD);
    ctx.status = 303;
    ctx.redirect('/account?done=passkey-removed#passkeys');
  });

  router.get(['/passkeys/options', '/passkeys/add', '/passkeys/rename', '/passkeys/remove'], (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account#passkeys');
  });
}
