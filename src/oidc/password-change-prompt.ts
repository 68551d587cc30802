/**
 * A temporary password (an administrator's `--temporary`, or an account asked to change it), or one past
 * PASSWORD_MAX_AGE (src/accounts/password-expiry.ts): after the login and
 * before anything else, the signed-in account is held at "Choose a new password" (src/interaction/password-change.ts)
 * until it has chosen one, as at Keycloak's "Update Password" required action. Checked on every authorization, so
 * a session that was open when the change was asked for is held too; `prompt=none` gets `interaction_required`.
 */
import { type KoaContextWithOIDC, interactionPolicy } from 'oidc-provider';

/** The prompt's name, which our interaction routes answer. */
export const PASSWORD_CHANGE_PROMPT = 'update_password';

/**
 * From the account object (src/oidc/accounts.ts): a temporary password is replaced whatever the sign-in; an
 * expired one (PASSWORD_MAX_AGE) only after a sign-in made with it, as a passkey or another identity provider
 * uses none.
 */
export function mustChangePassword(ctx: KoaContextWithOIDC): boolean {
  const account = ctx.oidc.account as { passwordChangeRequired?: boolean; passwordExpired?: boolean } | undefined;
  if (account?.passwordChangeRequired === true) return true;
  return account?.passwordExpired === true && (ctx.oidc.session?.amr ?? []).includes('pwd');
}

export function passwordChangePrompt() {
  return new interactionPolicy.Prompt(
    { name: PASSWORD_CHANGE_PROMPT, requestable: false },
    new interactionPolicy.Check('password_change_required', 'the account must choose a new password', async (ctx) => mustChangePassword(ctx)),
  );
}
