/** What the account page shows: who is signed in, their two-step verification, passkeys, sessions and apps. */
import { RECENT_SIGN_INS, signInShown } from './sign-in-activity.js';
import type { Context } from 'koa';
import { type User, hasOwnPassword } from '../accounts/users.js';
import { passwordExpiresAt } from '../accounts/password-expiry.js';
import { signedInRecently } from './re-authentication.js';
import { wayInLeft } from './ways-in.js';
import { ACCOUNT_CONSOLE_CLIENT_ID } from '../clients/account-console.js';
import { csrfToken } from '../interaction/csrf.js';
import type { AccountDependencies } from './routes.js';
import type { SignedIn } from './signed-in.js';

/** What the page says after a change (`?done=`): fixed sentences, so the address cannot put words on the page. */
const NOTICES = {
  name: 'Your name was changed.',
  password: 'Your password was changed.',
  'password-others': 'Your password was changed, and your other sessions were signed out.',
  'password-set': 'Your password was set: you can sign in with your email address and it too.',
  'password-removed': 'Your password was removed: you sign in with your passkeys or your other sign-ins.',
  'password-removed-others': 'Your password was removed, and your other sessions were signed out.',
  'two-step-on': 'Two-step verification is on.',
  'two-step-off': 'Two-step verification is off.',
  'session-ended': 'That session was signed out.',
  'app-removed': 'The app no longer has access to your account.',
  'confirmation-sent': 'We sent you a link: open it to confirm your email address.',
  'email-confirmed': 'Your email address is confirmed.',
  'email-change-sent': 'We sent a link to your new address: open it to make the change.',
  'passkey-added': 'Your passkey was added. You can sign in with it instead of your password.',
  'passkey-removed': 'That passkey was removed: it no longer signs you in.',
  'passkey-renamed': 'That passkey was renamed.',
  'identity-unlinked': 'That sign-in was unlinked: it no longer signs you in.',
  'identity-linked': 'That sign-in was linked: it signs you in here from now on.',
} as const;
export type AccountPageNotice = keyof typeof NOTICES;

/** An attribute's value as the page shows it: a list as its items joined, the rest as text. */
const shownValue = (value: unknown) => (Array.isArray(value) ? value.join(', ') : String(value));

const when = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
const shown = (date: Date | null) => (date ? `${when.format(date)} UTC` : 'unknown');
/** When the password expires, as the page shows it; undefined when it never does. */
const passwordExpiryShown = (user: User, maxAgeSeconds: number) => {
  const expiresAt = passwordExpiresAt(user, maxAgeSeconds);
  return expiresAt && shown(expiresAt);
};

export interface AccountPageOptions {
  notice?: unknown;
  errors?: { name?: string; email?: string; password?: string; twoStep?: string; replaceApp?: string; passkeys?: string; identities?: string; deletion?: string };
  status?: number;
}

export async function renderAccountPage(ctx: Context, deps: AccountDependencies, signedIn: SignedIn, options: AccountPageOptions = {}): Promise<void> {
  const { user, session } = signedIn;
  const [sessions, grants, codesLeft, passkeys, identities, signIns] = await Promise.all([
    deps.sessions.list(user.id),
    deps.users.listGrants(user.id),
    user.totpEnrolledAt ? deps.twoFactor.recoveryCodesLeft(user.id) : 0,
    deps.passkeys.available ? deps.passkeys.list(user.id) : [],
    deps.linkedIdentities.listFor(user.id),
    deps.accountActivity(user.id, RECENT_SIGN_INS, 'sign_in'),
  ]);
  const clientName = async (clientId: string) => (await deps.catalog.client(clientId))?.name ?? clientId;
  const notice = typeof options.notice === 'string' && options.notice in NOTICES ? NOTICES[options.notice as AccountPageNotice] : undefined;
  deps.views.render(
    ctx,
    'account.njk',
    {
      csrf: csrfToken(ctx.app.keys as string[], session.uid, 'account'),
      user: { name: user.name, email: user.email, emailConfirmed: user.emailVerified },
      // The attributes apps are given (USER_CLAIMS), as the person may see what is told about them; the others stay
      // the administrators'.
      attributes: deps.config.userClaims
        .filter((name) => Object.hasOwn(user.attributes, name))
        .map((name) => ({ name, value: shownValue(user.attributes[name]) })),
      // Confirming an address takes a mail; without mail the page only says whether it is confirmed.
      canConfirmEmail: Boolean(deps.outbox),
      // "on" only when it is: a sign-in meant to set it up may have been left before the app was added.
      notice: notice === NOTICES['two-step-on'] && !user.totpEnrolledAt ? undefined : notice,
      errors: options.errors ?? {},
      accountDeletion: deps.config.accountDeletion,
      // The terms of service (TERMS_URL), and the version this account accepted and when.
      terms: deps.config.terms && { ...deps.config.terms, accepted: user.termsAccepted && { version: user.termsAccepted.version, at: shown(user.termsAccepted.at) } },
      twoStep: { on: Boolean(user.totpEnrolledAt), since: shown(user.totpEnrolledAt), required: deps.twoFactor.isRequired(user), codesLeft },
      passkeys: deps.passkeys.available
        ? passkeys.map((passkey) => ({
            id: passkey.id,
            name: passkey.name,
            // What holds it, when known and not its name already; and whether it is synced.
            about: [passkey.authenticator !== passkey.name && passkey.authenticator, passkey.backedUp && 'synced'].filter(Boolean).join(', '),
            added: shown(passkey.createdAt),
            lastUsed: passkey.lastUsedAt && shown(passkey.lastUsedAt),
          }))
        : undefined,
      // Changes to how the account signs in ask for the current password; an account without one makes them (its
      // first password among them) right after a sign-in, not on a session left open (./re-authentication.ts).
      hasPassword: hasOwnPassword(user),
      // PASSWORD_MAX_AGE: when the password must be replaced (../accounts/password-expiry.ts).
      passwordExpires: passwordExpiryShown(user, deps.config.passwords.maxAgeSeconds),
      signedInJustNow: signedInRecently(session),
      // Going without a password needs another way in: a passkey, or another identity provider (./ways-in.ts).
      passwordRemovable: hasOwnPassword(user) && wayInLeft(user, passkeys, identities, { password: true }),
      // The providers not linked yet, to link from here.
      linkable: deps.upstream.list.filter((provider) => !identities.some((identity) => identity.provider === provider.id)).map(({ id, name }) => ({ id, name })),
      // Shown where the server has identity providers, or the account still has a link to one since removed.
      identities:
        deps.upstream.list.length > 0 || identities.length > 0
          ? identities.map((identity) => ({
              id: identity.provider,
              provider: deps.upstream.get(identity.provider)?.name ?? identity.provider,
              email: identity.email,
              linked: shown(identity.createdAt),
              lastUsed: identity.lastUsedAt && shown(identity.lastUsedAt),
            }))
          : undefined,
      sessions: await Promise.all(
        sessions.map(async (each) => ({
          uid: each.uid,
          current: each.uid === session.uid,
          signedInAt: shown(each.signedInAt),
          twoStep: each.amr.includes('mfa'),
          passkey: each.amr.includes('hwk') || each.amr.includes('swk'),
          apps: await Promise.all(each.clients.map(clientName)),
        })),
      ),
      // What a person may not have done themselves shows here: a refused password, a sign-in from elsewhere.
      recentSignIns: await Promise.all(
        signIns.map((event) => signInShown(event, { client: clientName, provider: (id) => deps.upstream.get(id)?.name ?? id, when: shown })),
      ),
      apps: await Promise.all(
        grants
          .filter((grant) => grant.clientId && grant.clientId !== ACCOUNT_CONSOLE_CLIENT_ID)
          .map(async (grant) => ({
            grantId: grant.grantId,
            name: await clientName(grant.clientId ?? ''),
            since: shown(grant.createdAt),
            scopes: grant.scopes.filter((scope) => scope !== 'openid'),
            apis: await Promise.all(
              Object.entries(grant.resources).map(async ([indicator, scopes]) => ({ name: (await deps.catalog.api(indicator))?.name ?? indicator, scopes })),
            ),
          })),
      ),
    },
    options.status ?? 200,
  );
}

export function renderNewRecoveryCodes(ctx: Context, deps: AccountDependencies, codes: string[], options: { replacedApp?: boolean } = {}): void {
  deps.views.render(ctx, 'account-recovery-codes.njk', { codes, replacedApp: options.replacedApp ?? false });
}
