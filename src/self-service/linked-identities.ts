/**
 * The account page's "Other sign-ins" (src/federation/): the accounts at other identity providers that sign in
 * to this one, linked and unlinked by the person.
 *
 *   POST /account/identities/link                  a provider (and the current password, where the account has
 *                                                  one) → to the provider, with a state, a nonce and PKCE kept in
 *                                                  a signed cookie of this path
 *   GET  /account/identities/callback/:provider    the provider's answer (sent on by /federation/:provider/
 *                                                  callback, its state being `account.…`) → linked
 *   POST /account/identities/unlink                a provider (and the current password) → unlinked
 *
 * Linking adds a way in and unlinking takes one away, so both ask for the current password, or for an account
 * without one a sign-in just now (./re-authentication.ts), as adding and removing a passkey do: a session left
 * open is no way to keep the account or to lock its person out. An account's last way in is not unlinked
 * (./ways-in.ts).
 */
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { NotFoundError } from '../errors.js';
import { ACCOUNT_LINK_STATE_PREFIX, UpstreamSignInError, pendingUpstreamSignIn } from '../federation/upstream.js';
import { readForm } from '../http/read-form.js';
import { PageError } from '../interaction/errors.js';
import { type AccountPageNotice, renderAccountPage } from './page.js';
import { WRONG_PASSWORD, checkOwner, currentPasswordField, refuse } from './re-authentication.js';
import { ONLY_WAY_IN, takeAWayIn } from './ways-in.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';
import type { Database } from '../store/database.js';

const LINK_COOKIE = 'authz.link';
const LINK_PATH = '/account/identities';

const identityForm = z.object({
  provider: z.string().min(1).max(64),
  current: currentPasswordField.optional(),
});

/** The sign-in at the provider, and the account it is to be linked to. */
const keptLink = pendingUpstreamSignIn.extend({ accountId: z.string() });

export function addLinkedIdentityRoutes(
  router: Router,
  deps: AccountDependencies,
  steps: { signedIn: Middleware; signedInNow: (ctx: Context) => Promise<SignedIn | undefined>; done: (ctx: Context, notice: AccountPageNotice, anchor?: string) => void },
): void {
  const { signedIn, signedInNow, done } = steps;
  const cookieOptions = { signed: true, httpOnly: true, sameSite: 'lax' as const, path: LINK_PATH, secure: deps.config.production, overwrite: true };
  const refuseWith = (ctx: Context, error: string, status = 400) => renderAccountPage(ctx, deps, ctx.state.signedIn as SignedIn, { errors: { identities: error }, status });

  /** The form, with the owner checked (./re-authentication.ts); undefined when refused (page sent). */
  const checkedForm = async (ctx: Context): Promise<z.infer<typeof identityForm> | undefined> => {
    const form = identityForm.safeParse(ctx.request.body);
    if (!form.success) throw new PageError(400, 'The form did not say which sign-in.');
    const checked = await checkOwner(ctx, deps, form.data.current);
    if ('passed' in checked) return form.data;
    await refuse(ctx, deps, checked, 'identities', WRONG_PASSWORD);
    return undefined;
  };

  router.get(['/identities/link', '/identities/unlink'], (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account#identities');
  });

  router.post('/identities/link', readForm, signedIn, async (ctx) => {
    const { user } = ctx.state.signedIn as SignedIn;
    const form = await checkedForm(ctx);
    if (!form) return;
    const provider = deps.upstream.get(form.provider);
    if (!provider) throw new PageError(404, 'This server offers no sign-in with that provider.');
    let started: Awaited<ReturnType<typeof deps.upstream.begin>>;
    try {
      started = await deps.upstream.begin(provider, (random) => `${ACCOUNT_LINK_STATE_PREFIX}${random}`);
    } catch (error) {
      if (error instanceof UpstreamSignInError) return refuseWith(ctx, error.message, 502);
      throw error;
    }
    const kept: z.infer<typeof keptLink> = { ...started.pending, accountId: user.id };
    ctx.cookies.set(LINK_COOKIE, Buffer.from(JSON.stringify(kept)).toString('base64url'), { ...cookieOptions, expires: new Date(kept.expiresAt) });
    ctx.status = 303;
    ctx.redirect(started.url.href);
  });

  router.get('/identities/callback/:provider', async (ctx) => {
    const found = await signedInNow(ctx);
    if (!found) throw new PageError(401, 'You are not signed in to your account any more.', { href: '/account', label: 'Sign in to your account' });
    ctx.state.signedIn = found;
    const provider = deps.upstream.get(ctx.params.provider ?? '');
    if (!provider) throw new PageError(404, 'This server offers no sign-in with that provider.');
    // Taken once: the cookie goes whatever the answer.
    const kept = takeKeptLink(ctx);
    ctx.cookies.set(LINK_COOKIE, null, cookieOptions);
    if (!kept || kept.provider !== provider.id || kept.accountId !== found.user.id) {
      return refuseWith(ctx, `The link with ${provider.name} expired, was used already, or was begun in another session. Try again.`);
    }
    let subject: string;
    let email: string | undefined;
    try {
      ({ subject, email } = await deps.upstream.complete(provider, ctx.querystring, kept));
    } catch (error) {
      if (error instanceof UpstreamSignInError) return refuseWith(ctx, error.message);
      throw error;
    }
    if (!(await deps.linkedIdentities.link(found.user.id, provider.id, subject, email))) {
      const error = `That ${provider.name} account signs in to another account here, or yours has another ${provider.name} account linked: unlink that one first.`;
      return refuseWith(ctx, error, 409);
    }
    done(ctx, 'identity-linked', '#identities');
  });

  router.post('/identities/unlink', readForm, signedIn, async (ctx) => {
    const signedInAs = ctx.state.signedIn as SignedIn;
    const form = await checkedForm(ctx);
    if (!form) return;
    const unlink = (trx: Database) =>
      deps.linkedIdentities.unlink(signedInAs.user.id, form.provider, undefined, trx).catch((error: unknown) => {
        // Unlinked already (another tab, an administrator): what was asked for.
        if (!(error instanceof NotFoundError)) throw error;
      });
    if (!(await takeAWayIn(deps, signedInAs.user.id, { provider: form.provider }, unlink))) return refuseWith(ctx, ONLY_WAY_IN);
    done(ctx, 'identity-unlinked', '#identities');
  });
}

function takeKeptLink(ctx: Context): z.infer<typeof keptLink> | undefined {
  const value = ctx.cookies.get(LINK_COOKIE, { signed: true });
  if (!value) return undefined;
  try {
    const kept = keptLink.safeParse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
    return kept.success && kept.data.expiresAt > Date.now() ? kept.data : undefined;
  } catch {
    return undefined;
  }
}
